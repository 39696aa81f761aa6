-- Every alert state change (schemas/alert.v1.json) with the values that
-- caused it, and every route change (the control API's audit log: who or
-- which rule, why, before and after). Both are small; they are kept
-- ${alerts_ttl_days} days. The same record read twice from Kafka has the
-- same sorting key and collapses in ReplacingMergeTree.
CREATE TABLE IF NOT EXISTS ${db}.alerts
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
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(eval_time)
ORDER BY (alertname, fingerprint, active_at, state, eval_time)
TTL toDateTime(eval_time) + INTERVAL ${alerts_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS ${db}.actions
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
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (time, id)
TTL toDateTime(time) + INTERVAL ${alerts_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;
