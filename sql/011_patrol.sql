-- The smart patrol (智能巡检): rules with per-scope overrides, maintenance windows and
-- silences, ops teams and their scopes, alerts with their lifecycle, the log of every
-- notification, work orders (工单), and the daily patrol rounds with their findings.
-- Rules are evaluated set-based by patrol/engine.py; see docs/patrol.md.

CREATE TABLE patrol_rule (
    id                text PRIMARY KEY,
    title             text NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('board', 'recorder', 'gateway', 'device', 'lesson')),
    severity          text NOT NULL CHECK (severity IN ('info', 'warning', 'major', 'critical')),
    params            jsonb NOT NULL DEFAULT '{}',
    for_s             integer NOT NULL DEFAULT 0 CHECK (for_s >= 0),      -- true this long before it fires
    every_s           integer NOT NULL DEFAULT 0 CHECK (every_s >= 0),    -- 0: every cycle
    active_in         text NOT NULL DEFAULT 'school_hours' CHECK (active_in IN ('lessons', 'school_hours', 'always')),
    page              boolean NOT NULL DEFAULT true,   -- false: a finding for the patrol round, never notified
    enabled           boolean NOT NULL DEFAULT true,
    last_evaluated_at timestamptz
);

-- Thresholds of one rule for a province, city, county or school: the most specific
-- scope wins key by key. A params key "enabled": false turns the rule off there.
CREATE TABLE patrol_rule_override (
    rule_id     text NOT NULL REFERENCES patrol_rule(id) ON DELETE CASCADE,
    scope_level text NOT NULL CHECK (scope_level IN ('province', 'city', 'county', 'school')),
    scope_code  text NOT NULL,
    params      jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (rule_id, scope_level, scope_code)
);

-- Which rule, when active, suppresses which: on the same device, or anywhere in the same school.
CREATE TABLE patrol_inhibition (
    source_rule text NOT NULL REFERENCES patrol_rule(id) ON DELETE CASCADE,
    target_rule text NOT NULL REFERENCES patrol_rule(id) ON DELETE CASCADE,
    same        text NOT NULL CHECK (same IN ('device', 'school')),
    PRIMARY KEY (source_rule, target_rule, same),
    CHECK (source_rule <> target_rule)
);

CREATE FUNCTION patrol_scope_rank(level text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE level WHEN 'province' THEN 1 WHEN 'city' THEN 2 WHEN 'county' THEN 3 WHEN 'school' THEN 4 END
$$;

-- True when the school lies inside the scope (level, code).
-- Positional parameters: inside the body a bare "code" would mean the column s.code.
CREATE FUNCTION patrol_school_in_scope(level text, code text, school char(10)) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM school s WHERE s.code = $3 AND CASE $1
        WHEN 'province' THEN s.province_code = $2 WHEN 'city' THEN s.city_code = $2
        WHEN 'county' THEN s.county_code = $2 WHEN 'school' THEN s.code = $2 ELSE false END)
$$;

-- The effective params of a rule at every school that has an override somewhere above it.
CREATE VIEW patrol_school_params AS
WITH hit AS (
    SELECT o.rule_id, s.code AS school_code, o.params, 1 AS rank
    FROM patrol_rule_override o JOIN school s ON o.scope_level = 'province' AND s.province_code = o.scope_code
    UNION ALL
    SELECT o.rule_id, s.code, o.params, 2
    FROM patrol_rule_override o JOIN school s ON o.scope_level = 'city' AND s.city_code = o.scope_code
    UNION ALL
    SELECT o.rule_id, s.code, o.params, 3
    FROM patrol_rule_override o JOIN school s ON o.scope_level = 'county' AND s.county_code = o.scope_code
    UNION ALL
    SELECT o.rule_id, o.scope_code::char(10), o.params, 4
    FROM patrol_rule_override o WHERE o.scope_level = 'school'
)
SELECT h.rule_id, h.school_code,
       r.params || jsonb_object_agg(kv.key, kv.value ORDER BY h.rank) AS params
FROM hit h JOIN patrol_rule r ON r.id = h.rule_id, jsonb_each(h.params) AS kv
GROUP BY h.rule_id, h.school_code, r.params;

-- Planned work: nothing inside the scope (or on the device) is a fault meanwhile.
CREATE TABLE maintenance_window (
    id          bigserial PRIMARY KEY,
    scope_level text NOT NULL CHECK (scope_level IN ('province', 'city', 'county', 'school', 'device')),
    scope_code  text NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL CHECK (ends_at > starts_at),
    reason      text NOT NULL,
    created_by  text NOT NULL DEFAULT 'system',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX maintenance_window_ends_idx ON maintenance_window (ends_at);

-- Muted notifications: alerts still open and close, nobody is paged. Null matches anything.
CREATE TABLE silence (
    id          bigserial PRIMARY KEY,
    rule_id     text REFERENCES patrol_rule(id) ON DELETE CASCADE,
    scope_level text CHECK (scope_level IN ('province', 'city', 'county', 'school')),
    scope_code  text,
    device_id   text REFERENCES device(id) ON DELETE CASCADE,
    starts_at   timestamptz NOT NULL DEFAULT now(),
    ends_at     timestamptz NOT NULL CHECK (ends_at > starts_at),
    reason      text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((scope_level IS NULL) = (scope_code IS NULL))
);
CREATE INDEX silence_ends_idx ON silence (ends_at);

-- Operations teams: each owns a scope; alerts go to the team of the smallest scope.
CREATE TABLE ops_team (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    scope_level text NOT NULL CHECK (scope_level IN ('province', 'city', 'county', 'school')),
    scope_code  text NOT NULL,
    webhook_url text,
    email       text,
    mqtt_topic  text,
    UNIQUE (scope_level, scope_code)
);

CREATE TABLE alert (
    id               bigserial PRIMARY KEY,
    rule_id          text NOT NULL REFERENCES patrol_rule(id) ON DELETE CASCADE,
    device_id        text NOT NULL REFERENCES device(id) ON DELETE CASCADE,
    school_code      char(10) NOT NULL REFERENCES school(code) ON DELETE CASCADE,
    state            text NOT NULL CHECK (state IN ('pending', 'firing', 'acknowledged', 'resolved')),
    severity         text NOT NULL CHECK (severity IN ('info', 'warning', 'major', 'critical')),
    summary          text NOT NULL,
    detail           jsonb NOT NULL DEFAULT '{}',
    first_seen       timestamptz NOT NULL,
    last_seen        timestamptz NOT NULL,
    count            integer NOT NULL DEFAULT 1,
    fired_at         timestamptz,
    acked_at         timestamptz,
    acked_by         text,
    resolved_at      timestamptz,
    resolution       text,
    inhibited_by     bigint REFERENCES alert(id) ON DELETE SET NULL,
    silence_id       bigint REFERENCES silence(id) ON DELETE SET NULL,
    team_id          bigint REFERENCES ops_team(id) ON DELETE SET NULL,
    escalation_level integer NOT NULL DEFAULT 0,
    escalated_at     timestamptz,
    notified_at      timestamptz,
    reminded_at      timestamptz,
    resolved_notified_at timestamptz
);
-- One open alert per (rule, device); resolved ones are history.
CREATE UNIQUE INDEX alert_open_uq ON alert (rule_id, device_id) WHERE state <> 'resolved';
CREATE INDEX alert_open_school_idx ON alert (school_code) WHERE state <> 'resolved';
CREATE INDEX alert_fired_idx ON alert (fired_at DESC) WHERE fired_at IS NOT NULL;
CREATE INDEX alert_resolved_unsent_idx ON alert (resolved_at)
    WHERE state = 'resolved' AND notified_at IS NOT NULL AND resolved_notified_at IS NULL;

-- Every message sent (or attempted) on every channel.
CREATE TABLE notification (
    id        bigserial PRIMARY KEY,
    sent_at   timestamptz NOT NULL DEFAULT now(),
    kind      text NOT NULL CHECK (kind IN ('firing', 'resolved', 'reminder', 'escalation')),
    channel   text NOT NULL CHECK (channel IN ('mqtt', 'webhook', 'email')),
    team_id   bigint REFERENCES ops_team(id) ON DELETE SET NULL,
    target    text NOT NULL,
    alert_ids bigint[] NOT NULL,
    status    text NOT NULL CHECK (status IN ('sent', 'failed')),
    error     text,
    body      text NOT NULL
);
CREATE INDEX notification_sent_idx ON notification (sent_at DESC);
CREATE INDEX notification_alerts_idx ON notification USING gin (alert_ids);

-- Work orders (工单): a person fixing something, opened from an alert.
CREATE TABLE work_order (
    id              bigserial PRIMARY KEY,
    alert_id        bigint REFERENCES alert(id) ON DELETE SET NULL,
    school_code     char(10) NOT NULL REFERENCES school(code) ON DELETE CASCADE,
    device_id       text REFERENCES device(id) ON DELETE SET NULL,
    title           text NOT NULL,
    status          text NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'in_progress', 'done', 'accepted', 'rejected', 'cancelled')),
    assignee        text,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    deadline        timestamptz,
    started_at      timestamptz,
    done_at         timestamptz,
    resolution      text,
    accepted_at     timestamptz,
    accepted_by     text,
    acceptance_note text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX work_order_school_idx ON work_order (school_code, created_at DESC);
CREATE INDEX work_order_open_idx ON work_order (deadline) WHERE status IN ('open', 'in_progress');
CREATE UNIQUE INDEX work_order_alert_open_uq ON work_order (alert_id)
    WHERE alert_id IS NOT NULL AND status IN ('open', 'in_progress', 'done');

-- A patrol round (巡检) of one scope: what was checked, what was found.
CREATE TABLE patrol_round (
    id          bigserial PRIMARY KEY,
    scope_level text NOT NULL CHECK (scope_level IN ('province', 'city', 'county', 'school')),
    scope_code  text NOT NULL,
    day         date NOT NULL,
    trigger     text NOT NULL CHECK (trigger IN ('daily', 'on_demand')),
    started_at  timestamptz NOT NULL,
    checked     jsonb NOT NULL DEFAULT '{}',
    summary     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX patrol_round_scope_idx ON patrol_round (scope_level, scope_code, started_at DESC);

CREATE TABLE patrol_finding (
    round_id    bigint NOT NULL REFERENCES patrol_round(id) ON DELETE CASCADE,
    rule_id     text NOT NULL,
    device_id   text NOT NULL,
    school_code char(10) NOT NULL,
    severity    text NOT NULL,
    state       text NOT NULL,
    summary     text NOT NULL,
    first_seen  timestamptz NOT NULL,
    change      text NOT NULL CHECK (change IN ('new', 'ongoing', 'cleared')),
    alert_id    bigint,
    PRIMARY KEY (round_id, rule_id, device_id)
);

-- The patrol reads recent history across all devices by time.
CREATE INDEX IF NOT EXISTS device_status_change_time_idx ON device_status_change (time);
CREATE INDEX IF NOT EXISTS device_event_lesson_start_idx ON device_event (lesson_id, device_id, time)
    WHERE type IN ('lesson_start', 'stream_start');
CREATE INDEX IF NOT EXISTS board_telemetry_time_brin ON board_telemetry USING brin (time);
CREATE INDEX IF NOT EXISTS recorder_telemetry_time_brin ON recorder_telemetry USING brin (time);

-- The default rules, in a function so a wiped table can be re-seeded (the service calls it
-- at start; existing rules are left as they are). Thresholds live in params.
CREATE FUNCTION patrol_seed_default_rules() RETURNS void
LANGUAGE sql AS $seed$
INSERT INTO patrol_rule (id, title, kind, severity, params, for_s, every_s, active_in, page) VALUES
('device_offline',        '设备离线',             'device',   'warning',  '{}', 300, 0, 'lessons', true),
('gateway_offline',       '学校网络中断',         'gateway',  'critical', '{}', 120, 0, 'school_hours', true),
('lesson_not_started',    '专递课堂未开课',       'lesson',   'major',    '{"grace_min": 5}', 0, 0, 'always', true),
('receivers_not_joined',  '接收课堂未加入',       'lesson',   'warning',  '{"grace_min": 5, "early_min": 10}', 0, 0, 'always', true),
('stream_dropped',        '课中推流中断',         'lesson',   'major',    '{"early_min": 10}', 60, 0, 'always', true),
('camera_lost',           '摄像头离线',           'recorder', 'warning',  '{}', 120, 0, 'school_hours', true),
('storage_low',           '录播存储不足',         'recorder', 'warning',  '{"min_free_gb": 50}', 600, 0, 'school_hours', true),
('dropped_frames_high',   '丢帧过多',             'recorder', 'warning',  '{"frames": 300, "window_min": 5}', 0, 60, 'school_hours', true),
('video_brightness',      '画面亮度异常',         'recorder', 'warning',  '{"min": 30, "max": 220}', 120, 0, 'school_hours', true),
('video_frozen',          '画面冻结',             'recorder', 'major',    '{"frames": 10}', 60, 0, 'school_hours', true),
('board_overheat',        '一体机过热',           'board',    'warning',  '{"max_temp_c": 85}', 600, 300, 'always', true),
('board_disk_full',       '一体机磁盘将满',       'board',    'warning',  '{"max_used_pct": 95}', 0, 300, 'always', true),
('board_error_codes',     '一体机报错',           'board',    'warning',  '{}', 0, 300, 'school_hours', true),
('board_unused',          '一体机长期未使用',     'board',    'info',     '{"school_days": 10}', 0, 3600, 'always', false),
('uplink_saturated',      '出口带宽饱和',         'gateway',  'warning',  '{"share": 0.9}', 900, 0, 'school_hours', true),
('network_loss',          '网络丢包',             'gateway',  'warning',  '{"warning": 2, "major": 10}', 300, 0, 'school_hours', true),
('network_latency',       '网络时延高',           'gateway',  'warning',  '{"warning": 100, "major": 300}', 300, 0, 'school_hours', true),
('aps_offline',           '无线AP大面积离线',     'gateway',  'warning',  '{"min_offline": 3, "share": 0.3}', 300, 0, 'school_hours', true),
('flapping',              '设备频繁上下线',       'device',   'warning',  '{"changes": 6, "window_min": 60}', 0, 60, 'school_hours', true)
ON CONFLICT (id) DO NOTHING;

-- A school's network down is one incident: everything else there waits behind it.
INSERT INTO patrol_inhibition (source_rule, target_rule, same)
SELECT 'gateway_offline', id, 'school' FROM patrol_rule WHERE id NOT IN ('gateway_offline', 'board_unused')
ON CONFLICT DO NOTHING;
-- A device down explains everything else about it (a recorder's cameras, a board's lesson).
INSERT INTO patrol_inhibition (source_rule, target_rule, same)
SELECT 'device_offline', id, 'device' FROM patrol_rule
WHERE id NOT IN ('device_offline', 'gateway_offline', 'board_unused', 'flapping')
ON CONFLICT DO NOTHING;
$seed$;

SELECT patrol_seed_default_rules();
