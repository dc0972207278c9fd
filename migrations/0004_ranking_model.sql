-- The ranking model of each snapshot (see MFEngine/RankingModel.swift): fitted by `train` next to the
-- rating model and versioned with it, so rollback restores both. Deleting a snapshot deletes it.

CREATE TABLE ranking_models (
    snapshot_id INTEGER PRIMARY KEY REFERENCES snapshots(id) ON DELETE CASCADE,
    factors     INTEGER NOT NULL,
    item_count  INTEGER NOT NULL,
    choice      TEXT    NOT NULL,   -- JSON: the chosen settings, the light-user rule and the validation figures
    model       BLOB    NOT NULL,   -- RankingModel encoding
    checksum    INTEGER NOT NULL    -- CRC-32 of model
);
