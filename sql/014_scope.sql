-- One home for the scope in SQL, the twin of core/scope.py: its levels, and the schools of
-- a scope (province, city, county, school, or community: 教联体, a group of schools that may
-- reach across county lines). Every scope_level check and every scope test calls these.
-- The patrol now covers communities too: silences, maintenance windows, rule overrides,
-- ops teams and rounds may name one, and a community user's alerts are its members'.

-- The levels from the widest to the narrowest: a community, a few schools, ranks below a county.
CREATE FUNCTION scope_levels() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY['province', 'city', 'county', 'community', 'school']
$$;

-- The schools of the scope (level, code). Positional parameters: a bare "code" would be s.code.
-- Each branch runs only for its own level, on an index (a province reads its schools).
CREATE FUNCTION scope_schools(level text, code text) RETURNS TABLE (school_code char(10))
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT s.code FROM school s WHERE $1 = 'province' AND s.province_code = $2
    UNION ALL SELECT s.code FROM school s WHERE $1 = 'city' AND s.city_code = $2
    UNION ALL SELECT s.code FROM school s WHERE $1 = 'county' AND s.county_code = $2
    UNION ALL SELECT s.code FROM school s WHERE $1 = 'school' AND s.code = $2::bpchar
    UNION ALL SELECT m.school_code FROM community_member m WHERE $1 = 'community' AND m.community_code = $2
$$;

-- True when the school lies inside the scope (level, code).
CREATE FUNCTION school_in_scope(level text, code text, school char(10)) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT EXISTS (SELECT 1 FROM scope_schools($1, $2) x WHERE x.school_code = $3)
$$;

-- The patrol's names for the same, kept for a patrol of the previous release still running.
CREATE OR REPLACE FUNCTION patrol_school_in_scope(level text, code text, school char(10)) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT school_in_scope($1, $2, $3)
$$;

-- 1 for a province up to 5 for a school: the higher, the more specific.
CREATE OR REPLACE FUNCTION patrol_scope_rank(level text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT array_position(scope_levels(), level)
$$;

-- Overrides of every level, a community's among them: the most specific wins key by key.
CREATE OR REPLACE VIEW patrol_school_params AS
WITH hit AS (
    SELECT o.rule_id, x.school_code::char(10) AS school_code, o.params, patrol_scope_rank(o.scope_level) AS rank
    FROM patrol_rule_override o CROSS JOIN LATERAL scope_schools(o.scope_level, o.scope_code) AS x
)
SELECT h.rule_id, h.school_code,
       r.params || jsonb_object_agg(kv.key, kv.value ORDER BY h.rank) AS params
FROM hit h JOIN patrol_rule r ON r.id = h.rule_id, jsonb_each(h.params) AS kv
GROUP BY h.rule_id, h.school_code, r.params;

ALTER TABLE app_user DROP CONSTRAINT app_user_scope_level_check,
    ADD CONSTRAINT app_user_scope_level_check CHECK (scope_level = ANY (scope_levels()));
ALTER TABLE target DROP CONSTRAINT target_scope_level_check,
    ADD CONSTRAINT target_scope_level_check CHECK (scope_level = ANY (scope_levels()));
ALTER TABLE patrol_rule_override DROP CONSTRAINT patrol_rule_override_scope_level_check,
    ADD CONSTRAINT patrol_rule_override_scope_level_check CHECK (scope_level = ANY (scope_levels()));
ALTER TABLE maintenance_window DROP CONSTRAINT maintenance_window_scope_level_check,
    ADD CONSTRAINT maintenance_window_scope_level_check
        CHECK (scope_level = 'device' OR scope_level = ANY (scope_levels()));
ALTER TABLE silence DROP CONSTRAINT silence_scope_level_check,
    ADD CONSTRAINT silence_scope_level_check CHECK (scope_level = ANY (scope_levels()));
ALTER TABLE ops_team DROP CONSTRAINT ops_team_scope_level_check,
    ADD CONSTRAINT ops_team_scope_level_check CHECK (scope_level = ANY (scope_levels()));
ALTER TABLE patrol_round DROP CONSTRAINT patrol_round_scope_level_check,
    ADD CONSTRAINT patrol_round_scope_level_check CHECK (scope_level = ANY (scope_levels()));
