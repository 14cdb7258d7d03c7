-- Account lockout after repeated failed logins (shared by every API process).
-- One row per login name that failed: the failures in a row since the last success or
-- unlock, how many locks that streak has earned (each lasts longer), and until when the
-- current one runs. A success or an administrator's unlock deletes the row.

CREATE TABLE login_lock (
    username     text PRIMARY KEY,
    failures     integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    locks        integer NOT NULL DEFAULT 0 CHECK (locks >= 0),
    locked_until timestamptz,
    last_failure timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_lock_until_idx ON login_lock (locked_until) WHERE locked_until IS NOT NULL;

-- What became of each attempt: 'ok', 'failed' (wrong name or password), 'locked' (refused
-- unchecked while the account was locked). Older rows have only `succeeded`.
ALTER TABLE login_attempt ADD COLUMN outcome text CHECK (outcome IN ('ok', 'failed', 'locked'));
