-- How many times the store has sent a command's result: 1 when it was applied or refused, one
-- more each time the command came again after the shop had acknowledged the result (a shop
-- restored from a backup taken while the command was pending) and the same result was sent
-- again. The first repeat is logged at info, later ones (a resend that crossed the answer) at
-- debug, so an operator sees each such command once however often it comes.
ALTER TABLE sync_inbox ADD COLUMN answers INTEGER NOT NULL DEFAULT 1;
