-- Retention of the stock ledger and of finished orders (hub/retention.py says what goes and why).
--
-- The ledger stays append-only to everything but retention: a delete is refused unless the
-- transaction first wrote store_meta 'ledger_pruning' (retention removes it before committing).
DROP TRIGGER stock_ledger_append_only_delete;
CREATE TRIGGER stock_ledger_append_only_delete BEFORE DELETE ON stock_ledger
WHEN NOT EXISTS (SELECT 1 FROM store_meta WHERE key = 'ledger_pruning')
BEGIN
    SELECT RAISE(ABORT, 'the stock ledger is append-only');
END;

-- What retention took out of the ledger, per product: with it the ledger still adds up to the
-- stock (SUM(stock_ledger.qty) + stock_ledger_pruned.qty = stock.on_hand, the same for
-- reserved), the opening balance of what is kept.
CREATE TABLE stock_ledger_pruned (
    sku          TEXT PRIMARY KEY,
    qty          INTEGER NOT NULL,          -- sum of the pruned rows' qty
    reserved_qty INTEGER NOT NULL,          -- sum of the pruned rows' reserved_qty
    rows         INTEGER NOT NULL,          -- how many rows went
    through_seq  INTEGER NOT NULL,          -- the newest of them
    pruned_at    REAL NOT NULL
);

-- Finished orders by age, for retention (the other orders are never pruned).
CREATE INDEX orders_finished ON orders (updated_at)
    WHERE state IN ('rejected', 'collected', 'cancelled', 'expired');
