-- Cancels that reached the store before their order: the shop sends an order's placing and its
-- cancel as separate commands, and a placing that failed (the database busy) is sent again
-- after the cancel. The order, when it comes, is cancelled at once instead of reserving stock
-- for a customer who no longer wants it. Pruned with the sync inbox.
CREATE TABLE early_cancels (
    order_id    TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX early_cancels_received ON early_cancels (received_at);
