-- Video settings of a camera (image coordinates relative 0-1, as Frigate uses):
-- zones map detections to alert types; privacy masks are blacked out before detection
-- and in every stored snapshot. Snapshots live and die with their alert.
ALTER TABLE cameras
    ADD COLUMN zones jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN privacy_masks jsonb NOT NULL DEFAULT '[]';

CREATE TABLE snapshots (
    alert_id bigint PRIMARY KEY REFERENCES alerts (id) ON DELETE CASCADE,
    taken_at timestamptz NOT NULL DEFAULT now(),
    jpeg     bytea NOT NULL
);
