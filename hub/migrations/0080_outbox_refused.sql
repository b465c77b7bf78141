-- An outbox row the sync agent refused to send for its size (over max_payload_bytes) is marked
-- with when it was refused. It stays in the outbox, as every row does until the shop's ack
-- covers it, but it is no longer waiting to be sent: the pending-outbox gauge leaves it out, so
-- a refused newest row (no later row for the shop to ack it away) does not keep a stuck-outbox
-- alert firing for good.
ALTER TABLE outbox ADD COLUMN refused_at REAL;
