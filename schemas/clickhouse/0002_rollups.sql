-- Per-minute rollups of the events, by number, template, use case,
-- campaign, channel, country and error code, kept ${rollup_ttl_days} days (longer
-- than raw events). A materialized view fills them as events are inserted;
-- a batch inserted again with the same deduplication token (a retry) is
-- dropped in both tables. Counts are sums: read them with sum() ... GROUP
-- BY, since rows of one minute are merged only eventually.
CREATE TABLE IF NOT EXISTS ${db}.rollup_minute
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
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (waba_id, phone_number_id, template, use_case, campaign, channel, country, error_code, minute)
TTL minute + INTERVAL ${rollup_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.rollup_minute_mv TO ${db}.rollup_minute AS
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
FROM ${db}.events
GROUP BY minute, waba_id, phone_number_id, template, use_case, campaign, channel, country, error_code;
