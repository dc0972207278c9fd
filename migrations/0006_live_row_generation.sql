-- Which live generation last wrote each overlay row, and the generation at which the overlay was last
-- cleared (a new snapshot made live). A reader holding generation G of the same base patches its copy
-- of the live model with the rows of generation > G, instead of decoding the whole snapshot again.
ALTER TABLE live_users ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE live_items ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
CREATE INDEX live_users_by_generation ON live_users (generation);
CREATE INDEX live_items_by_generation ON live_items (generation);
ALTER TABLE live_model ADD COLUMN base_generation INTEGER NOT NULL DEFAULT 0;
