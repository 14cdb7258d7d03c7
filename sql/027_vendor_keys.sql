-- API keys of vendor platforms that push readings over HTTP (POST /api/v1/ingest/{channel}).
-- One key is valid only for the devices registered under its vendor (device.vendor). Only the
-- SHA-256 of the key is kept (the key is 32 random bytes, so a fast hash is enough and lets a
-- request find its key by index); the key itself is printed once, by `cockpit vendor-key`.

CREATE TABLE vendor_key (
    id         bigserial PRIMARY KEY,
    vendor     text NOT NULL CHECK (vendor <> ''),
    key_hash   text NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX vendor_key_vendor_idx ON vendor_key (vendor) WHERE revoked_at IS NULL;
