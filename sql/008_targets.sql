-- Targets the province dispatches to cities and counties (and they to their children):
-- a figure, a bar and a deadline, set on a scope and applying to it and below it.

CREATE TABLE target (
    id          bigserial PRIMARY KEY,
    scope_level text NOT NULL CHECK (scope_level IN ('province', 'city', 'county', 'school', 'community')),
    scope_code  text NOT NULL,
    figure      text NOT NULL,
    comparator  text NOT NULL CHECK (comparator IN ('>=', '<=')),
    value       double precision NOT NULL,
    deadline    date NOT NULL,
    note        text,
    set_by      text NOT NULL,
    set_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (scope_level, scope_code, figure, deadline)
);
CREATE INDEX target_scope_idx ON target (scope_level, scope_code);
