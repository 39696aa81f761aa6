-- The optional archive of raw signed payloads (the raw topic), for replays
-- after a parser fix. It holds personal data (phone numbers, message
-- bodies): off by default, and kept only ${raw_ttl_days} days.
CREATE TABLE IF NOT EXISTS ${db}.raw_payloads
(
    receive_time     DateTime64(3, 'UTC'),
    waba_id          LowCardinality(String),
    headers          Map(String, String),
    body             String CODEC(ZSTD(3)),
    kafka_partition  UInt16,
    kafka_offset     UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(receive_time)
ORDER BY (kafka_partition, kafka_offset)
TTL toDateTime(receive_time) + INTERVAL ${raw_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- How far the sink got, per table and Kafka partition: the highest offset
-- stored. Materialized views write it in the same insert as the rows, so
-- after a crash between ClickHouse's acknowledgement and the Kafka offset
-- commit the sink resumes after what is stored instead of inserting it
-- again.
CREATE TABLE IF NOT EXISTS ${db}.sink_progress
(
    source           LowCardinality(String),
    kafka_partition  UInt16,
    max_offset       SimpleAggregateFunction(max, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (source, kafka_partition)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.sink_progress_events_mv TO ${db}.sink_progress AS
SELECT 'events' AS source, kafka_partition, max(kafka_offset) AS max_offset FROM ${db}.events GROUP BY kafka_partition;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.sink_progress_alerts_mv TO ${db}.sink_progress AS
SELECT 'alerts' AS source, kafka_partition, max(kafka_offset) AS max_offset FROM ${db}.alerts GROUP BY kafka_partition;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.sink_progress_actions_mv TO ${db}.sink_progress AS
SELECT 'actions' AS source, kafka_partition, max(kafka_offset) AS max_offset FROM ${db}.actions GROUP BY kafka_partition;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.sink_progress_raw_mv TO ${db}.sink_progress AS
SELECT 'raw_payloads' AS source, kafka_partition, max(kafka_offset) AS max_offset FROM ${db}.raw_payloads GROUP BY kafka_partition;
