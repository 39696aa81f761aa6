-- Vigia's schema for a ClickHouse cluster (shards x replicas), the
-- counterpart of schemas/clickhouse/0001..0004 for a single node. Apply it
-- once by hand (see README.md); Vigia's own migrations only know a single
-- node. NOT TESTED ON A CLUSTER: only parsed, and run with the replicated
-- engines swapped for their single-node forms, by TestClusterDDLParses on
-- embedded chDB.
--
-- Parameters, as in the migrations: ${db} the database; ${events_ttl_days},
-- ${recipient_ttl_days}, ${rollup_ttl_days}, ${alerts_ttl_days},
-- ${raw_ttl_days} the retention in days. {cluster}, {shard}, {replica} are
-- the servers' own macros (<macros> of the server configuration) and
-- {database} ClickHouse's built-in one; they stay as they are.
--
-- Layout: every table of the single-node schema becomes a replicated
-- <name>_local table on every shard, plus a Distributed table with the
-- single-node name that Vigia and the analysts use. Events, rollups and raw
-- payloads are sharded by WABA (cityHash64(waba_id)): all the rows of one
-- WABA, and so every duplicate of an event, land on one shard, where FINAL
-- collapses them and the per-shard materialized views roll them up. Alerts
-- are sharded by fingerprint, and actions by the fingerprint of the alert
-- that caused them: the copies of a record stay together, and an action
-- sits on the shard of its alert (actions without an alert all go to one
-- shard; they are few).
-- Materialized views are on the local tables and write to local tables, so
-- a shard's rollups and progress come from that shard's own inserts.

CREATE DATABASE IF NOT EXISTS ${db} ON CLUSTER '{cluster}';

-- Events (0001_events.sql).
CREATE TABLE IF NOT EXISTS ${db}.events_local ON CLUSTER '{cluster}'
(
    id                          String,
    kind                        String,
    channel                     String,
    source                      String,
    field                       String,
    event_time                  DateTime64(3, 'UTC'),
    receive_time                DateTime64(3, 'UTC'),
    waba_id                     String,
    phone_number_id             String,
    display_phone_number        String,
    message_id                  String,
    status                      String,
    recipient                   String TTL toDateTime(event_time) + INTERVAL ${recipient_ttl_days} DAY,
    recipient_country           String,
    recipient_id_kind           String,
    recipient_type              String,
    error_code                  Int32,
    error_class                 String,
    error_title                 String,
    billable                    UInt8,
    pricing_model               String,
    pricing_type                String,
    pricing_category            String,
    conversation_id             String,
    conversation_origin         String,
    conversation_expiration     Nullable(DateTime64(3, 'UTC')),
    template                    String,
    use_case                    String,
    campaign                    String,
    inbound_type                String,
    inbound_context_message_id  String,
    opt_out_source              String,
    opt_out_category            String,
    opt_out_resumed             UInt8,
    quality_event               String,
    quality_current_limit       String,
    quality_old_limit           String,
    template_id                 String,
    template_name               String,
    template_language           String,
    template_event              String,
    template_reason             String,
    template_other_info_title   String,
    template_previous_quality   String,
    template_new_quality        String,
    account_event               String,
    account_violation_type      String,
    account_ban_state           String,
    account_ban_date            String,
    account_entity_type         String,
    account_entity_id           String,
    account_alert_severity      String,
    account_alert_status        String,
    account_alert_type          String,
    capability_messaging_limit  String,
    capability_max_phone_numbers Int32,
    capability_max_daily_conversation_per_phone String,
    kafka_partition             UInt16,
    kafka_offset                UInt64,
    INDEX idx_template template TYPE set(0) GRANULARITY 4,
    INDEX idx_use_case use_case TYPE set(0) GRANULARITY 4
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/events_local', '{replica}')
PARTITION BY toDate(event_time)
ORDER BY (waba_id, phone_number_id, event_time, id)
TTL toDateTime(event_time) + INTERVAL ${events_ttl_days} DAY
-- Inserted parts under 128 MiB are compact (one file, not two a column):
-- what Vigia sets on a single node at start (store.EventsWidePartBytes).
SETTINGS min_bytes_for_wide_part = 134217728;

CREATE TABLE IF NOT EXISTS ${db}.events ON CLUSTER '{cluster}' AS ${db}.events_local
ENGINE = Distributed('{cluster}', ${db}, events_local, cityHash64(waba_id));

-- Per-minute rollups (0002_rollups.sql).
CREATE TABLE IF NOT EXISTS ${db}.rollup_minute_local ON CLUSTER '{cluster}'
(
    minute           DateTime('UTC'),
    waba_id          LowCardinality(String),
    phone_number_id  LowCardinality(String),
    template         LowCardinality(String),
    use_case         LowCardinality(String),
    campaign         LowCardinality(String),
    channel          LowCardinality(String),
    country          LowCardinality(String),
    error_code       Int32,
    events           UInt64,
    sent             UInt64,
    delivered        UInt64,
    read             UInt64,
    failed           UInt64,
    accepted         UInt64,
    deferred         UInt64,
    inbound          UInt64,
    opt_outs         UInt64
)
ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/{database}/rollup_minute_local', '{replica}')
PARTITION BY toYYYYMM(minute)
ORDER BY (waba_id, phone_number_id, template, use_case, campaign, channel, country, error_code, minute)
TTL minute + INTERVAL ${rollup_ttl_days} DAY;

CREATE TABLE IF NOT EXISTS ${db}.rollup_minute ON CLUSTER '{cluster}' AS ${db}.rollup_minute_local
ENGINE = Distributed('{cluster}', ${db}, rollup_minute_local, cityHash64(waba_id));

-- The same SELECT as rollup_minute_mv of 0002_rollups.sql, on the local
-- tables (TestClusterDDLParses checks they stay identical).
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.rollup_minute_mv ON CLUSTER '{cluster}' TO ${db}.rollup_minute_local AS
SELECT
    toStartOfMinute(event_time) AS minute,
    waba_id, phone_number_id, template, use_case, campaign, channel,
    recipient_country AS country,
    error_code,
    count() AS events,
    countIf(status = 'sent') AS sent,
    countIf(status = 'delivered') AS delivered,
    countIf(status = 'read') AS read,
    countIf(status = 'failed') AS failed,
    countIf(status = 'accepted') AS accepted,
    countIf(status = 'deferred') AS deferred,
    countIf(kind = 'inbound') AS inbound,
    countIf(opt_out_source != '' AND opt_out_resumed = 0) AS opt_outs
FROM ${db}.events_local
GROUP BY minute, waba_id, phone_number_id, template, use_case, campaign, channel, country, error_code;

-- Alerts and route actions (0003_alerts_actions.sql).
CREATE TABLE IF NOT EXISTS ${db}.alerts_local ON CLUSTER '{cluster}'
(
    fingerprint      String,
    alertname        LowCardinality(String),
    rule_group       LowCardinality(String),
    rule             String,
    state            LowCardinality(String),
    labels           Map(String, String),
    annotations      Map(String, String),
    values           String,
    baseline         String,
    active_at        DateTime64(3, 'UTC'),
    fired_at         Nullable(DateTime64(3, 'UTC')),
    resolved_at      Nullable(DateTime64(3, 'UTC')),
    eval_time        DateTime64(3, 'UTC'),
    actions          String,
    kafka_partition  UInt16,
    kafka_offset     UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/alerts_local', '{replica}')
PARTITION BY toYYYYMM(eval_time)
ORDER BY (alertname, fingerprint, active_at, state, eval_time)
TTL toDateTime(eval_time) + INTERVAL ${alerts_ttl_days} DAY;

CREATE TABLE IF NOT EXISTS ${db}.alerts ON CLUSTER '{cluster}' AS ${db}.alerts_local
ENGINE = Distributed('{cluster}', ${db}, alerts_local, cityHash64(fingerprint));

CREATE TABLE IF NOT EXISTS ${db}.actions_local ON CLUSTER '{cluster}'
(
    id                 String,
    time               DateTime64(3, 'UTC'),
    actor              String,
    actor_kind         LowCardinality(String),
    action             LowCardinality(String),
    use_case           LowCardinality(String),
    target             String,
    reason             String,
    alert_fingerprint  String,
    occurrence         String,
    before             String,
    after              String,
    dry_run            UInt8,
    kafka_partition    UInt16,
    kafka_offset       UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/actions_local', '{replica}')
PARTITION BY toYYYYMM(time)
ORDER BY (time, id)
TTL toDateTime(time) + INTERVAL ${alerts_ttl_days} DAY;

CREATE TABLE IF NOT EXISTS ${db}.actions ON CLUSTER '{cluster}' AS ${db}.actions_local
ENGINE = Distributed('{cluster}', ${db}, actions_local, cityHash64(alert_fingerprint));

-- Raw payloads and sink progress (0004_raw_progress.sql).
CREATE TABLE IF NOT EXISTS ${db}.raw_payloads_local ON CLUSTER '{cluster}'
(
    receive_time     DateTime64(3, 'UTC'),
    waba_id          LowCardinality(String),
    headers          Map(String, String),
    body             String CODEC(ZSTD(3)),
    kafka_partition  UInt16,
    kafka_offset     UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/raw_payloads_local', '{replica}')
PARTITION BY toDate(receive_time)
ORDER BY (kafka_partition, kafka_offset)
TTL toDateTime(receive_time) + INTERVAL ${raw_ttl_days} DAY;

CREATE TABLE IF NOT EXISTS ${db}.raw_payloads ON CLUSTER '{cluster}' AS ${db}.raw_payloads_local
ENGINE = Distributed('{cluster}', ${db}, raw_payloads_local, cityHash64(waba_id));

CREATE TABLE IF NOT EXISTS ${db}.sink_progress_local ON CLUSTER '{cluster}'
(
    source           LowCardinality(String),
    kafka_partition  UInt16,
    max_offset       SimpleAggregateFunction(max, UInt64)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/sink_progress_local', '{replica}')
ORDER BY (source, kafka_partition);

-- Read through it with max(max_offset) ... GROUP BY source,
-- kafka_partition, as on a single node: the maximum over the shards. Only
-- the materialized views below write progress; the sharding key is there
-- because Distributed requires one for inserts.
CREATE TABLE IF NOT EXISTS ${db}.sink_progress ON CLUSTER '{cluster}' AS ${db}.sink_progress_local
ENGINE = Distributed('{cluster}', ${db}, sink_progress_local, kafka_partition);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.sink_progress_events_mv ON CLUSTER '{cluster}' TO ${db}.sink_progress_local AS
SELECT 'events' AS source, kafka_partition, max(kafka_offset) AS max_offset FROM ${db}.events_local GROUP BY kafka_partition;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.sink_progress_alerts_mv ON CLUSTER '{cluster}' TO ${db}.sink_progress_local AS
SELECT 'alerts' AS source, kafka_partition, max(kafka_offset) AS max_offset FROM ${db}.alerts_local GROUP BY kafka_partition;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.sink_progress_actions_mv ON CLUSTER '{cluster}' TO ${db}.sink_progress_local AS
SELECT 'actions' AS source, kafka_partition, max(kafka_offset) AS max_offset FROM ${db}.actions_local GROUP BY kafka_partition;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.sink_progress_raw_mv ON CLUSTER '{cluster}' TO ${db}.sink_progress_local AS
SELECT 'raw_payloads' AS source, kafka_partition, max(kafka_offset) AS max_offset FROM ${db}.raw_payloads_local GROUP BY kafka_partition;

-- Vigia's migration log, one copy on every server of the cluster (one
-- replication path for all shards, so {replica} must be unique across the
-- whole cluster, as it is when it is the host name). Vigia creates it as a
-- plain MergeTree on a single node; created here first, Vigia finds it.
CREATE TABLE IF NOT EXISTS ${db}.schema_migrations ON CLUSTER '{cluster}'
(
    version     UInt32,
    name        String,
    applied_at  DateTime64(3, 'UTC')
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{database}/schema_migrations', '{replica}')
ORDER BY version;

-- The single-node migrations this file stands for, recorded as applied so
-- that Vigia does not run them (one insert, replicated to every server).
-- Update the list when a migration is added, together with this file.
INSERT INTO ${db}.schema_migrations (version, name, applied_at) VALUES
    (1, 'events', now64(3)),
    (2, 'rollups', now64(3)),
    (3, 'alerts_actions', now64(3)),
    (4, 'raw_progress', now64(3));
