-- Commands sent down to devices, and the audit log of every write.

CREATE TABLE device_command (
    id             text PRIMARY KEY,
    device_id      text NOT NULL REFERENCES device(id) ON DELETE CASCADE,
    name           text NOT NULL CHECK (name IN ('reboot', 'power_schedule', 'notice')),
    params         jsonb NOT NULL DEFAULT '{}',
    batch_id       text,
    issued_by      text NOT NULL,
    issued_at      timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    published_at   timestamptz,
    result         text CHECK (result IN ('ok', 'rejected', 'failed')),
    result_message text,
    acked_at       timestamptz
);
CREATE INDEX device_command_device_idx ON device_command (device_id, issued_at DESC);
CREATE INDEX device_command_batch_idx ON device_command (batch_id) WHERE batch_id IS NOT NULL;

CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    username  text NOT NULL,
    action    text NOT NULL,
    target    text NOT NULL,
    detail    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);
