-- The item co-occurrence embedding fitted by the last training: ranks items for users with few
-- ratings (see MFEngine/Cooccurrence.swift). Derived from the ratings like the popular list, so it
-- is not versioned with snapshots: item ids never change, and rollback keeps it.

CREATE TABLE cooccurrence (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    version    INTEGER NOT NULL,   -- grows with every fit, so a long-lived reader knows to reload
    created_at TEXT NOT NULL,
    factors    INTEGER NOT NULL,
    item_count INTEGER NOT NULL,
    exponent   REAL NOT NULL,
    vectors    BLOB NOT NULL,      -- item_count × factors float32, little-endian
    checksum   INTEGER NOT NULL    -- CRC-32 of vectors
);
