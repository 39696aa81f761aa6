-- Normalized events (schemas/event.v1.json), one row per event, flattened
-- for SQL. The id is the hash of the event's natural key (event.NewID), so
-- a duplicate delivered twice by Meta or by Kafka has the same id and the
-- same sorting key: ReplacingMergeTree collapses them in merges, and
-- queries that must be exact read with FINAL. Rows are partitioned by day
-- and ordered for per-number queries; the skip index serves per-template
-- filters (the rollups serve per-template aggregates). The recipient
-- pseudonym (personal data under LGPD) is cleared after ${recipient_ttl_days}
-- days by a column TTL; whole rows expire after ${events_ttl_days} days.
CREATE TABLE IF NOT EXISTS ${db}.events
(
    id                          String,
    kind                        LowCardinality(String),
    channel                     LowCardinality(String),
    source                      LowCardinality(String),
    field                       LowCardinality(String),
    event_time                  DateTime64(3, 'UTC'),
    receive_time                DateTime64(3, 'UTC'),
    waba_id                     LowCardinality(String),
    phone_number_id             LowCardinality(String),
    display_phone_number        LowCardinality(String),
    message_id                  String,
    status                      LowCardinality(String),
    recipient                   String TTL toDateTime(event_time) + INTERVAL ${recipient_ttl_days} DAY,
    recipient_country           LowCardinality(String),
    recipient_id_kind           LowCardinality(String),
    recipient_type              LowCardinality(String),
    error_code                  Int32,
    error_class                 LowCardinality(String),
    error_title                 LowCardinality(String),
    billable                    UInt8,
    pricing_model               LowCardinality(String),
    pricing_type                LowCardinality(String),
    pricing_category            LowCardinality(String),
    conversation_id             String,
    conversation_origin         LowCardinality(String),
    conversation_expiration     Nullable(DateTime64(3, 'UTC')),
    template                    LowCardinality(String),
    use_case                    LowCardinality(String),
    campaign                    LowCardinality(String),
    inbound_type                LowCardinality(String),
    inbound_context_message_id  String,
    opt_out_source              LowCardinality(String),
    opt_out_category            LowCardinality(String),
    opt_out_resumed             UInt8,
    quality_event               LowCardinality(String),
    quality_current_limit       LowCardinality(String),
    quality_old_limit           LowCardinality(String),
    template_id                 String,
    template_name               LowCardinality(String),
    template_language           LowCardinality(String),
    template_event              LowCardinality(String),
    template_reason             LowCardinality(String),
    template_other_info_title   LowCardinality(String),
    template_previous_quality   LowCardinality(String),
    template_new_quality        LowCardinality(String),
    account_event               LowCardinality(String),
    account_violation_type      LowCardinality(String),
    account_ban_state           LowCardinality(String),
    account_ban_date            String,
    account_entity_type         LowCardinality(String),
    account_entity_id           String,
    account_alert_severity      LowCardinality(String),
    account_alert_status        LowCardinality(String),
    account_alert_type          LowCardinality(String),
    capability_messaging_limit  LowCardinality(String),
    capability_max_phone_numbers Int32,
    capability_max_daily_conversation_per_phone LowCardinality(String),
    kafka_partition             UInt16,
    kafka_offset                UInt64,
    INDEX idx_template template TYPE set(0) GRANULARITY 4,
    INDEX idx_use_case use_case TYPE set(0) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(event_time)
ORDER BY (waba_id, phone_number_id, event_time, id)
TTL toDateTime(event_time) + INTERVAL ${events_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;
