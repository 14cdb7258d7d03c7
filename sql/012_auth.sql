-- Login throttling (shared by every API process) and revoked tokens.

CREATE TABLE login_attempt (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    username  text NOT NULL,
    client_ip text NOT NULL,
    succeeded boolean NOT NULL
);
CREATE INDEX login_attempt_user_idx ON login_attempt (username, at DESC) WHERE NOT succeeded;
CREATE INDEX login_attempt_ip_idx ON login_attempt (client_ip, at DESC) WHERE NOT succeeded;

CREATE TABLE revoked_token (
    jti        text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
