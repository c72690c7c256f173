-- A revoked key stops working at once in every server process (each keeps verified keys for a
-- few seconds) and its open live streams end: a revocation is announced.
CREATE TRIGGER api_keys_revoked AFTER UPDATE OF revoked_at ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('keys');
