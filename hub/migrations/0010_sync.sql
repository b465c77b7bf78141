-- Sync with the online shop: the link's own state, the inbox of applied command ids, and dead
-- letters (incoming messages that could not be applied, kept with the reason).

CREATE TABLE sync_state (
    key   TEXT PRIMARY KEY,           -- 'epoch', 'acked_seq'
    value INTEGER NOT NULL
);
INSERT INTO sync_state (key, value) VALUES ('epoch', 0), ('acked_seq', 0);

-- One row per command id ever applied or refused, written in the same transaction as the
-- command's effect and its result event, so a command delivered again changes nothing.
CREATE TABLE sync_inbox (
    command_id  TEXT PRIMARY KEY,     -- ULID of the command envelope
    type        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('applied', 'rejected')),
    reason      TEXT,
    ref         TEXT,                 -- what it touched (order id, member id...)
    result_seq  INTEGER NOT NULL,     -- seq of the command.result event in the outbox
    received_at REAL NOT NULL
);
CREATE INDEX sync_inbox_received ON sync_inbox (received_at);

CREATE TABLE sync_dead_letters (
    id          INTEGER PRIMARY KEY,
    topic       TEXT NOT NULL,
    reason      TEXT NOT NULL,        -- too_large, malformed_json, invalid_envelope, ...
    message     TEXT NOT NULL,
    size        INTEGER NOT NULL,     -- bytes received; payload keeps only the first 4 KiB
    payload     BLOB NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX sync_dead_letters_received ON sync_dead_letters (received_at);
