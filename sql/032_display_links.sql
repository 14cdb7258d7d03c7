-- Display links (大屏展示链接): a wall screen in a command room shows the cockpit without a login.
-- An administrator issues a link bound to one scope inside their own, with the cockpit pages it
-- rotates through and how often; the screen trades the link's secret for short-lived read-only
-- tokens (api/auth/display.py). Only the SHA-256 of the secret is kept (it is 32 random bytes,
-- as a vendor key is: a fast hash is enough and lets the exchange find the link by index). A link
-- is revoked, never deleted, so the audit log's entries keep naming a row.

CREATE TABLE display_link (
    id           bigserial PRIMARY KEY,
    label        text NOT NULL CHECK (length(label) BETWEEN 1 AND 100),
    scope_level  text NOT NULL CHECK (scope_level IN ('province', 'city', 'county', 'school', 'community')),
    scope_code   text NOT NULL CHECK (scope_code ~ '^[A-Za-z0-9_-]{1,32}$'),
    -- the cockpit pages the screen rotates through, by path ("/", "/equity" …), in order
    pages        jsonb NOT NULL CHECK (CASE WHEN jsonb_typeof(pages) = 'array'
                                            THEN jsonb_array_length(pages) BETWEEN 1 AND 12 ELSE false END),
    rotate_s     integer NOT NULL CHECK (rotate_s BETWEEN 5 AND 3600),
    secret_hash  text NOT NULL UNIQUE CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    revoked_by   text,
    last_used_at timestamptz,  -- the last exchange of the secret for a token
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);
CREATE INDEX display_link_scope_idx ON display_link (scope_level, scope_code);
