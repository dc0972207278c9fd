-- The ranking model's item rows changed by incremental updates since the live snapshot (see
-- RankingModel.absorb): an item's vector after fold-in steps, its rating count (the d_j of d_j^(−α))
-- and its popularity prior. Like live_items, cleared when another snapshot is made live; a frozen
-- snapshot stores the ranking model with these rows applied.
CREATE TABLE live_ranking_items (
    item_id    INTEGER PRIMARY KEY,
    ratings    INTEGER NOT NULL,   -- the item's rating count as the model counts it
    popularity REAL    NOT NULL,   -- log(1 + ratings in the top quarter of the scale)
    vector     BLOB    NOT NULL,   -- k float32, little-endian
    generation INTEGER NOT NULL    -- the live generation that wrote it
);
CREATE INDEX live_ranking_items_by_generation ON live_ranking_items (generation);
