-- The key that posted each alert (none for the server's own detector and MQTT listener): only
-- that key (or an operator) may send the alert's snapshot.
ALTER TABLE alerts ADD COLUMN key_id bigint;
