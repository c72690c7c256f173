-- The video fleet: detectors on any number of hosts share the cameras' streams through
-- leases (gridwatch/video/leases.py). A streamed camera has one lease row; a host claims free
-- or expired ones with FOR UPDATE SKIP LOCKED and renews them by heartbeat. Each claim draws
-- a new fencing token, which every alert of the lease carries and the server checks in the
-- alert's own transaction, so a host that stalled and was replaced cannot post as the owner.

-- A camera's stream (RTSP, HTTP, or a file). It may hold a password: the API shows it masked
-- (masked_url), whole only to admin and the fleet. A URL is printable ASCII (anything else
-- percent-encoded), as the API checks too.
ALTER TABLE cameras ADD COLUMN stream_url text
    CHECK (stream_url ~* '^(rtsps?|https?|file)://[!-~]+$' AND length(stream_url) <= 2000);

-- The URL with its secrets as ***: the password of its user part (or the whole user part when it
-- has no password: it may be a token), and query values whose names look like secrets.
CREATE FUNCTION masked_url(url text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT regexp_replace(regexp_replace(regexp_replace(url,
        '^([a-z][a-z0-9+.-]*://[^/@:?#]*):[^?#]*@', '\1:***@', 'i'),
        '^([a-z][a-z0-9+.-]*://)[^/:@?#]+@', '\1***@', 'i'),
        '([?&;][^=&;#]*(pass|pwd|token|key|secret|auth|sig|credential)[^=&;#]*=)[^&;#]*', '\1***', 'gi')
$$;

CREATE SEQUENCE video_lease_tokens;

CREATE TABLE video_leases (
    camera_id     text PRIMARY KEY REFERENCES cameras (id),
    host          text,           -- NULL: free
    key_id        bigint,         -- the video key of the host that holds it
    token         bigint,         -- the current claim's fencing token (grows with every claim)
    claimed_at    timestamptz,
    renewed_at    timestamptz,
    expires_at    timestamptz,
    -- what the host last said of the stream
    fps           real,
    frames        bigint,
    last_frame_at timestamptz,
    error         text
);

-- The hosts of the fleet as they last announced themselves; a host's fair share of the
-- streams follows its slots.
CREATE TABLE video_hosts (
    name       text PRIMARY KEY,
    key_id     bigint NOT NULL,  -- a live host's name is its key's: another key cannot speak for it
    slots      integer NOT NULL CHECK (slots > 0),
    started_at timestamptz NOT NULL,
    seen_at    timestamptz NOT NULL
);

-- Every camera with a stream has its lease row, however the stream was set.
CREATE FUNCTION add_video_lease() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.stream_url IS NOT NULL THEN
        INSERT INTO video_leases (camera_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER cameras_streamed AFTER INSERT OR UPDATE OF stream_url ON cameras
    FOR EACH ROW EXECUTE FUNCTION add_video_lease();

-- `video`: a fleet host's key. It claims and renews leases, reads the streams whole, and posts
-- the alerts and snapshots of the streams it holds.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
    CHECK (role IN ('viewer', 'operator', 'dispatcher', 'admin', 'ingest', 'team', 'video'));
