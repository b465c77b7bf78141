-- Why a rejected order was rejected, as a code the online shop's mini-program can act on (offer
-- a smaller quantity, say the store does not sell the product, say the store declined) without
-- reading the English `reason`. Orders rejected before this migration keep a null code.
ALTER TABLE orders ADD COLUMN reason_code TEXT
    CHECK (reason_code IN ('out_of_stock', 'not_sold_here', 'staff'));
