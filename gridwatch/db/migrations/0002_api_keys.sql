-- API keys (stored as SHA-256 of the key: keys are 256-bit random, so a fast hash is enough)
-- and the audit log of authenticated requests (who, when, what; never the body).
CREATE TABLE api_keys (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL,
    role       text NOT NULL CHECK (role IN ('viewer', 'operator', 'dispatcher', 'admin', 'ingest')),
    key_hash   bytea NOT NULL UNIQUE,
    prefix     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE audit_log (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL,
    key_id   bigint REFERENCES api_keys (id),
    role     text NOT NULL,
    method   text NOT NULL,
    path     text NOT NULL,
    status   integer NOT NULL,
    ms       real NOT NULL
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
