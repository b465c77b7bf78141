-- Core schema: catalogue, append-only stock ledger with derived stock, orders and reservations,
-- members, and the outbox that sync drains. Every store-visible change gets a number from the one
-- store-wide sequence in store_meta ('last_seq'), shared by the ledger and the outbox.

CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO store_meta (key, value) VALUES ('last_seq', '0');

CREATE TABLE products (
    sku         TEXT PRIMARY KEY,
    names       TEXT NOT NULL,              -- JSON object: language -> name
    aliases     TEXT NOT NULL DEFAULT '{}', -- JSON object: language -> [alias, ...]
    category    TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    price_cents INTEGER,                    -- NULL when the store has no price for it
    shelf       TEXT NOT NULL DEFAULT '',
    image       TEXT,                       -- file name under the images folder
    updated_at  REAL NOT NULL
);

CREATE TABLE product_images (
    id       INTEGER PRIMARY KEY,
    sku      TEXT NOT NULL REFERENCES products (sku) ON DELETE CASCADE,
    path     TEXT NOT NULL,                 -- relative to the images folder
    kind     TEXT NOT NULL CHECK (kind IN ('iconic', 'reference')),
    sha256   TEXT NOT NULL,
    added_at REAL NOT NULL,
    UNIQUE (sku, sha256)
);

CREATE TABLE stock_ledger (
    seq          INTEGER PRIMARY KEY,       -- from the store-wide sequence
    movement_id  TEXT NOT NULL UNIQUE,      -- ULID
    sku          TEXT NOT NULL REFERENCES products (sku),
    qty          INTEGER NOT NULL,          -- signed change of on-hand units
    reserved_qty INTEGER NOT NULL DEFAULT 0,-- signed change of reserved units
    reason       TEXT NOT NULL CHECK (reason IN ('receipt', 'sale', 'return', 'adjustment',
                                                 'write_off', 'reservation', 'release', 'pickup')),
    ref          TEXT,                      -- client reference: a movement is applied once per ref
    order_id     TEXT,
    flagged      INTEGER NOT NULL DEFAULT 0,-- 1: left available stock negative, needs review
    note         TEXT,
    ts           REAL NOT NULL
);
CREATE UNIQUE INDEX stock_ledger_ref ON stock_ledger (ref) WHERE ref IS NOT NULL;
CREATE INDEX stock_ledger_sku ON stock_ledger (sku, seq);
CREATE INDEX stock_ledger_flagged ON stock_ledger (flagged) WHERE flagged = 1;

CREATE TRIGGER stock_ledger_append_only_update BEFORE UPDATE ON stock_ledger
BEGIN
    SELECT RAISE(ABORT, 'the stock ledger is append-only');
END;
CREATE TRIGGER stock_ledger_append_only_delete BEFORE DELETE ON stock_ledger
BEGIN
    SELECT RAISE(ABORT, 'the stock ledger is append-only');
END;

CREATE TABLE stock (
    sku        TEXT PRIMARY KEY REFERENCES products (sku),
    on_hand    INTEGER NOT NULL,
    reserved   INTEGER NOT NULL CHECK (reserved >= 0),
    last_seq   INTEGER NOT NULL,
    updated_at REAL NOT NULL
);

-- Derived stock moves with the ledger in the same transaction, whoever writes the ledger.
CREATE TRIGGER stock_ledger_derive AFTER INSERT ON stock_ledger
BEGIN
    INSERT OR IGNORE INTO stock (sku, on_hand, reserved, last_seq, updated_at)
    VALUES (NEW.sku, 0, 0, 0, NEW.ts);
    UPDATE stock SET
        on_hand = on_hand + NEW.qty,
        reserved = reserved + NEW.reserved_qty,
        last_seq = NEW.seq,
        updated_at = NEW.ts
    WHERE sku = NEW.sku;
END;

CREATE TABLE members (
    id             TEXT PRIMARY KEY,
    display_name   TEXT NOT NULL DEFAULT '',
    consent        INTEGER NOT NULL DEFAULT 0,  -- 1: opted in to arrival reminders
    consent_at     REAL,
    beacon_key     TEXT,                        -- 32 hex characters; NULL without consent
    updated_at     REAL NOT NULL
);

CREATE TABLE orders (
    id          TEXT PRIMARY KEY,
    member_id   TEXT,
    channel     TEXT NOT NULL DEFAULT 'online',
    state       TEXT NOT NULL CHECK (state IN ('pending', 'accepted', 'rejected', 'ready',
                                               'collected', 'cancelled', 'expired')),
    reason      TEXT,                           -- why rejected, cancelled or expired
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    pickup_by   REAL                            -- reservation expiry once accepted
);
CREATE INDEX orders_state ON orders (state, pickup_by);
CREATE INDEX orders_member ON orders (member_id, state);

CREATE TABLE order_lines (
    order_id TEXT NOT NULL REFERENCES orders (id),
    line_no  INTEGER NOT NULL,
    sku      TEXT NOT NULL,
    qty      INTEGER NOT NULL CHECK (qty > 0),
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE order_history (
    id         INTEGER PRIMARY KEY,
    order_id   TEXT NOT NULL REFERENCES orders (id),
    from_state TEXT,
    to_state   TEXT NOT NULL,
    actor      TEXT NOT NULL,
    note       TEXT,
    ts         REAL NOT NULL
);
CREATE INDEX order_history_order ON order_history (order_id, id);

CREATE TABLE reservations (
    order_id   TEXT NOT NULL REFERENCES orders (id),
    sku        TEXT NOT NULL,
    qty        INTEGER NOT NULL CHECK (qty > 0),
    expires_at REAL NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('held', 'released', 'collected')),
    PRIMARY KEY (order_id, sku)
);

CREATE TABLE outbox (
    seq    INTEGER PRIMARY KEY,                 -- from the store-wide sequence
    msg_id TEXT NOT NULL UNIQUE,                -- ULID, kept across re-sends
    type   TEXT NOT NULL,
    data   TEXT NOT NULL,                       -- JSON
    ts     REAL NOT NULL
);
