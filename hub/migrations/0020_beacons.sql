-- Bluetooth LE: presence events of opted-in members, arrival reminders (sent and held back, with
-- why), and the health of the store's own beacons.

CREATE TABLE presence_events (
    id        INTEGER PRIMARY KEY,
    t         REAL NOT NULL,                  -- when the hub decided (Unix seconds)
    member_id TEXT NOT NULL,
    event     TEXT NOT NULL CHECK (event IN ('arrived', 'zone', 'left')),
    zone      TEXT
);
CREATE INDEX presence_events_member ON presence_events (member_id, t);
CREATE INDEX presence_events_t ON presence_events (t);

CREATE TABLE reminders (
    id         INTEGER PRIMARY KEY,
    order_id   TEXT NOT NULL,
    member_id  TEXT NOT NULL,
    visit_at   REAL NOT NULL,                 -- the arrival this reminder belongs to
    kind       TEXT NOT NULL CHECK (kind IN ('member', 'staff')),
    status     TEXT NOT NULL CHECK (status IN ('sent', 'held')),
    reason     TEXT,                          -- why held: quiet_hours, member_gap, ...
    zone       TEXT,
    seq        INTEGER,                       -- outbox sequence when sent to the shop
    created_at REAL NOT NULL,
    UNIQUE (order_id, visit_at, kind)         -- once per order per visit
);
CREATE INDEX reminders_member ON reminders (member_id, kind, status, created_at);
CREATE INDEX reminders_created ON reminders (created_at);

CREATE TABLE beacon_health (
    beacon_id     TEXT PRIMARY KEY,
    zone          TEXT,
    last_seen     REAL,
    rssi          INTEGER,
    scanner       TEXT,
    battery_mv    INTEGER,
    temperature_c REAL,
    uptime_s      REAL,
    missing       INTEGER NOT NULL DEFAULT 0,
    battery_low   INTEGER NOT NULL DEFAULT 0,
    updated_at    REAL NOT NULL
);

CREATE TABLE beacon_alerts (
    id        INTEGER PRIMARY KEY,
    beacon_id TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('missing', 'battery_low')),
    active    INTEGER NOT NULL,               -- 1: the problem started, 0: it cleared
    detail    TEXT NOT NULL,                  -- JSON
    seq       INTEGER NOT NULL,               -- outbox sequence
    t         REAL NOT NULL
);
CREATE INDEX beacon_alerts_t ON beacon_alerts (t);
