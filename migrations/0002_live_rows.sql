-- Incremental learning: the live model is its snapshot plus the rows changed since (an overlay).
-- One new rating rewrites two small rows here, never a whole model blob.

CREATE TABLE live_users (
    user_id INTEGER PRIMARY KEY,
    bias    REAL NOT NULL,
    vector  BLOB NOT NULL          -- k float32, little-endian
);

CREATE TABLE live_items (
    item_id INTEGER PRIMARY KEY,
    bias    REAL NOT NULL,
    vector  BLOB NOT NULL
);

-- Ratings applied to the live model since its snapshot, and the largest ratings.seq it has seen.
ALTER TABLE live_model ADD COLUMN updates INTEGER NOT NULL DEFAULT 0;
ALTER TABLE live_model ADD COLUMN watermark INTEGER NOT NULL DEFAULT 0;
