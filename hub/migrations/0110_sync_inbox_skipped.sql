-- The events of a store.recover the store skipped, as sent in its command.result (JSON list of
-- {"seq", "note"}; null for other commands and for answers from before it), so the same result
-- goes again, event by event, when the command comes again.
ALTER TABLE sync_inbox ADD COLUMN skipped TEXT;
