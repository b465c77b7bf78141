-- The staff queue lists the newest orders first, all or of one state: without these indexes
-- every load read and sorted every order the store ever had (14 ms at 36,000 orders on the
-- build machine, a year of a busy store; several times that on a Pi, for each tablet, on each
-- reload).
CREATE INDEX orders_created ON orders (created_at DESC, id);
CREATE INDEX orders_state_created ON orders (state, created_at DESC, id);
