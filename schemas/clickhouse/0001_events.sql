-- Normalized events (schemas/event.v1.json), one row per event, flattened
-- for SQL. The id is the hash of the event's natural key (event.NewID), so
-- a duplicate delivered twice by Meta or by Kafka has the same id and the
-- same sorting key: ReplacingMergeTree collapses them in merges, and
-- queries that must be exact read with FINAL. Rows are partitioned by day
-- and ordered for per-number queries; the skip index serves per-template
-- filters (the rollups serve per-template aggregates). The recipient
-- pseudonym (personal data under LGPD) is cleared after ${recipient_ttl_days}
-- days by a column TTL; whole rows expire after ${events_ttl_days} days.
-- Columns are plain String, not LowCardinality: chDB parses inserted
-- LowCardinality columns about 2.5 times slower (measured, docs/BENCHMARKS.md),
-- and the rollups, not this table, serve the grouped queries.
CREATE TABLE IF NOT EXISTS ${db}.events
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
ENGINE = ReplacingMergeTree
PARTITION BY toDate(event_time)
ORDER BY (waba_id, phone_number_id, event_time, id)
TTL toDateTime(event_time) + INTERVAL ${events_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;
