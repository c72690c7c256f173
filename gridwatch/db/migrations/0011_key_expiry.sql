-- A key may carry an expiry (a contractor's, a temporary screen's): after it, the key is refused
-- as a revoked one is.
ALTER TABLE api_keys ADD COLUMN expires_at timestamptz;
