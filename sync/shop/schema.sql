-- The shop service's database: a replica of each store's events, the views derived from them,
-- and what the shop asks of the stores. Every event is recorded in `applied` in the same
-- transaction as its effect, so a (store, seq) delivered again changes nothing. Retention
-- (sync/shop/retention.py) deletes old `applied` rows at or below the store's watermark, where a
-- copy is dropped without them, keeping what a restore within its window needs.

CREATE TABLE IF NOT EXISTS stores (
    store      TEXT PRIMARY KEY,
    epoch      INTEGER NOT NULL DEFAULT 0,   -- newest epoch seen (state or events)
    born_epoch INTEGER NOT NULL DEFAULT 0,   -- epoch of the newest online state applied
    last_seq   INTEGER NOT NULL DEFAULT 0,   -- announced by the store's last online state
    acked_seq  INTEGER NOT NULL DEFAULT 0,   -- what the store says the shop acknowledged (idem)
    watermark  INTEGER NOT NULL DEFAULT 0,   -- every event up to here is applied (chain of prev)
    online     INTEGER NOT NULL DEFAULT 0,
    state_at   REAL,                         -- ts of the last online state
    seen_at    REAL
);

CREATE TABLE IF NOT EXISTS applied (
    store      TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    prev       INTEGER NOT NULL,
    msg_id     TEXT NOT NULL,
    type       TEXT NOT NULL,
    dead       INTEGER NOT NULL DEFAULT 0,   -- 1: data failed its schema; kept in dead_letters
    applied_at REAL NOT NULL,
    epoch      INTEGER NOT NULL DEFAULT 0,   -- the store's run that sent it
    PRIMARY KEY (store, seq)
);
CREATE INDEX IF NOT EXISTS applied_prev ON applied (store, prev);
CREATE INDEX IF NOT EXISTS applied_age ON applied (store, applied_at, seq);  -- retention

CREATE TABLE IF NOT EXISTS movements (
    store        TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    movement_id  TEXT NOT NULL,
    sku          TEXT NOT NULL,
    qty          INTEGER NOT NULL,
    reserved_qty INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    order_id     TEXT,
    ts           REAL NOT NULL,
    data         TEXT,                       -- the event's data as sent (null: from before it)
    PRIMARY KEY (store, seq)
);
CREATE INDEX IF NOT EXISTS movements_sku ON movements (store, sku);

-- Max-seq wins: a movement or snapshot only replaces the row when it is newer, so events applied
-- out of order (shared subscriptions, replays) still end at the store's exact numbers.
CREATE TABLE IF NOT EXISTS stock_view (
    store      TEXT NOT NULL,
    sku        TEXT NOT NULL,
    on_hand    INTEGER NOT NULL,
    reserved   INTEGER NOT NULL,
    available  INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    source     TEXT NOT NULL CHECK (source IN ('movement', 'snapshot')),
    updated_at REAL NOT NULL,
    PRIMARY KEY (store, sku)
);
CREATE INDEX IF NOT EXISTS stock_view_sku ON stock_view (sku);

-- Keyed by (store, id): staff at each store choose ids for counter and phone orders, so two
-- stores may have an order "counter-1" (the shop's own ids, o-<ULID>, are unique everywhere).
CREATE TABLE IF NOT EXISTS orders (
    id         TEXT NOT NULL,
    store      TEXT NOT NULL,
    member     TEXT,
    state      TEXT NOT NULL,                -- 'requested' until the store answers
    reason     TEXT,
    reason_code TEXT,                        -- why rejected, for programs (shop-openapi.yaml)
    lines      TEXT NOT NULL,                -- JSON [{"sku", "qty"}]
    seq        INTEGER NOT NULL DEFAULT 0,   -- seq of the status event shown
    pickup_by  REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (store, id)
);
CREATE INDEX IF NOT EXISTS orders_member ON orders (member);
CREATE INDEX IF NOT EXISTS orders_id ON orders (id);

-- Idempotency-Key of POST /api/orders: a retried placement answers with the order the key made.
-- Keys are scoped to the member the order is for (the caller, authenticated by the gateway);
-- the primary key makes "first request wins" hold across shop instances on one database.
CREATE TABLE IF NOT EXISTS order_keys (
    member     TEXT NOT NULL,
    key        TEXT NOT NULL,
    request    TEXT NOT NULL,                -- SHA-256 of the canonical request body
    order_id   TEXT NOT NULL,
    store      TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (member, key)
);
CREATE INDEX IF NOT EXISTS order_keys_created ON order_keys (created_at);

CREATE TABLE IF NOT EXISTS order_events (
    store    TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    order_id TEXT NOT NULL,
    state    TEXT NOT NULL,
    reason   TEXT,
    reason_code TEXT,                      -- restored with reason by a rewind
    ts       REAL NOT NULL,
    PRIMARY KEY (store, seq)
);
CREATE INDEX IF NOT EXISTS order_events_order ON order_events (order_id, seq);
CREATE INDEX IF NOT EXISTS order_events_store_order ON order_events (store, order_id, seq);

CREATE TABLE IF NOT EXISTS commands (
    seq         INTEGER PRIMARY KEY,         -- the envelope seq of shop -> store commands
    id          TEXT NOT NULL UNIQUE,        -- ULID, kept across re-sends
    store       TEXT NOT NULL,
    type        TEXT NOT NULL,
    data        TEXT NOT NULL,               -- JSON
    status      TEXT NOT NULL CHECK (status IN ('pending', 'applied', 'rejected')),
    reason      TEXT,
    ref         TEXT,
    created_at  REAL NOT NULL,
    sent_at     REAL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    resolved_at REAL,
    result_seq  INTEGER                      -- seq of the store's command.result event
);
-- Pending commands are few and looked for every few seconds (all of them, or one store's), so
-- they get partial indexes; the cancel lookup of GET /api/orders/{id} and the rewind go by store
-- and ref. (Databases from before have commands_pending (store, status, sent_at): dropped.)
CREATE INDEX IF NOT EXISTS commands_pending_seq ON commands (seq) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS commands_pending_store ON commands (store, seq) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS commands_ref ON commands (store, ref, type);
CREATE INDEX IF NOT EXISTS commands_resolved ON commands (resolved_at) WHERE status <> 'pending';

CREATE TABLE IF NOT EXISTS members (
    id           TEXT PRIMARY KEY,
    display_name TEXT NOT NULL DEFAULT '',
    beacon_key   TEXT NOT NULL,              -- 32 hex characters, issued here
    created_at   REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS member_stores (
    member     TEXT NOT NULL REFERENCES members (id),
    store      TEXT NOT NULL,
    consent    INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (member, store)
);

CREATE TABLE IF NOT EXISTS reminders (
    store       TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    member      TEXT NOT NULL,
    data        TEXT NOT NULL,
    ts          REAL NOT NULL,    -- the store's clock: when it decided
    received_at REAL,             -- the shop's clock, for retention (null: from before it)
    PRIMARY KEY (store, seq)
);
CREATE INDEX IF NOT EXISTS reminders_member ON reminders (member, ts);
CREATE INDEX IF NOT EXISTS reminders_ts ON reminders (ts);  -- retention of rows without received_at

-- Events of other types (beacon health, types newer than this service): kept, never dropped.
CREATE TABLE IF NOT EXISTS other_events (
    store TEXT NOT NULL,
    seq   INTEGER NOT NULL,
    type  TEXT NOT NULL,
    data  TEXT NOT NULL,
    ts    REAL NOT NULL,
    PRIMARY KEY (store, seq)
);

-- Events a restored store no longer has (above the last seq of the backup it was restored from):
-- moved here from the live tables by the rewind, so the views follow the restored store, and
-- handed back to it in store.recover commands (command_id) to apply again. Never deleted but
-- reminders (personal data), pruned as the reminders are.
CREATE TABLE IF NOT EXISTS rewound_events (
    store        TEXT NOT NULL,
    epoch        INTEGER NOT NULL,           -- the run that sent it (0: not known any more)
    seq          INTEGER NOT NULL,
    type         TEXT NOT NULL,
    id           TEXT,                       -- movement id, order id (null: other types)
    data         TEXT NOT NULL,              -- JSON, as sent (or rebuilt from the live row)
    ts           REAL NOT NULL,
    rewound_at   REAL NOT NULL,
    command_id   TEXT,                       -- the store.recover handing it back (null: kept only)
    outcome      TEXT,                       -- applied, rejected (the command's), skipped;
                                             -- not_recovered
    note         TEXT,                       -- why skipped, rejected or not sent
    recovered_at REAL,
    PRIMARY KEY (store, epoch, seq)
);
CREATE INDEX IF NOT EXISTS rewound_events_command ON rewound_events (command_id);

CREATE TABLE IF NOT EXISTS drift (
    id          INTEGER PRIMARY KEY,
    store       TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('stock', 'rewind', 'history_gap', 'seq_reused')),
    sku         TEXT,
    seq         INTEGER,
    detail      TEXT NOT NULL,               -- JSON: what the shop had and what the store says
    detected_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS drift_detected ON drift (detected_at);  -- retention

CREATE TABLE IF NOT EXISTS dead_letters (
    id          INTEGER PRIMARY KEY,
    topic       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    message     TEXT NOT NULL,
    size        INTEGER NOT NULL,
    payload     BLOB NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_received ON dead_letters (received_at);  -- retention
