-- A rating replaced by a later one (a re-rating) keeps its old value here, so the ratings as they stood
-- at a snapshot's watermark — its training and test sets — stay fixed when users re-rate later.
CREATE TABLE replaced_ratings (
    user_id      INTEGER NOT NULL,
    item_id      INTEGER NOT NULL,
    rating       REAL    NOT NULL,
    ts           INTEGER,
    seq          INTEGER NOT NULL,  -- when this value was written
    replaced_seq INTEGER NOT NULL,  -- when a later value replaced it
    PRIMARY KEY (user_id, item_id, seq)
) WITHOUT ROWID;

CREATE TRIGGER ratings_keep_replaced BEFORE UPDATE OF rating, ts, seq ON ratings
BEGIN
    INSERT OR REPLACE INTO replaced_ratings (user_id, item_id, rating, ts, seq, replaced_seq)
    VALUES (old.user_id, old.item_id, old.rating, old.ts, old.seq, new.seq);
END;
