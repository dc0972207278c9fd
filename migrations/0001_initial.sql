-- mfrec schema, version 1.
-- Users and items keep the ids of the input files as text keys; `id` is the dense 0-based index the engine uses.

CREATE TABLE metadata (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE users (
    id  INTEGER PRIMARY KEY,          -- dense 0-based index, first-seen order
    key TEXT NOT NULL UNIQUE          -- the id as it appears in the ratings file
);

CREATE TABLE items (
    id     INTEGER PRIMARY KEY,       -- dense 0-based index, first-seen order
    key    TEXT NOT NULL UNIQUE,
    title  TEXT,
    genres TEXT                       -- '|'-separated, as in MovieLens
);

-- One row per (user, item): re-rating replaces. `seq` grows with every write, so a model records
-- the ratings it has seen as a watermark (the largest seq it was trained on).
-- user_id and item_id are assigned by mfrec in the same transaction as the rating; foreign keys are
-- left off this table because checking them costs a third of bulk-ingest speed.
CREATE TABLE ratings (
    user_id INTEGER NOT NULL,
    item_id INTEGER NOT NULL,
    rating  REAL    NOT NULL,
    ts      INTEGER,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (user_id, item_id)
) WITHOUT ROWID;

-- Immutable, numbered model versions.
CREATE TABLE snapshots (
    id              INTEGER PRIMARY KEY,
    created_at      TEXT    NOT NULL,                 -- ISO 8601, UTC
    parent_id       INTEGER REFERENCES snapshots(id) ON DELETE SET NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('trained', 'frozen', 'imported')),
    note            TEXT,
    factors         INTEGER NOT NULL,
    user_count      INTEGER NOT NULL,
    item_count      INTEGER NOT NULL,
    hyperparameters TEXT    NOT NULL,                 -- JSON
    metrics         TEXT    NOT NULL,                 -- JSON
    history         TEXT    NOT NULL,                 -- JSON, one object per epoch
    split           TEXT    NOT NULL,                 -- JSON: how the test set was chosen
    watermark       INTEGER NOT NULL,                 -- largest ratings.seq the model has seen
    global_mean     REAL    NOT NULL,
    model           BLOB    NOT NULL,                 -- FactorModel encoding
    model_bytes     INTEGER NOT NULL,                 -- uncompressed size of the encoding
    checksum        INTEGER NOT NULL                  -- CRC-32 of the stored blob
);

-- The model that answers queries: one row. `generation` changes whenever the live model changes,
-- so derived files (the item matrix) can tell whether they are stale.
CREATE TABLE live_model (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    snapshot_id INTEGER REFERENCES snapshots(id),
    generation  INTEGER NOT NULL,
    dirty       INTEGER NOT NULL DEFAULT 0           -- 1 when it has changes no snapshot holds
);
INSERT INTO live_model (id, snapshot_id, generation, dirty) VALUES (1, NULL, 0, 0);
