-- One row per accepted beacon. At-least-once delivery may write a row twice after a crash,
-- so the engine is ReplacingMergeTree keyed on the ingest-assigned event_id and queries read
-- it with FINAL: a replayed row can never be counted twice. ORDER BY starts with site and day
-- so every dashboard query reads one site's date range; name comes next because the outbound
-- report reads only clicks.
CREATE TABLE IF NOT EXISTS events
(
    site_id         LowCardinality(String),
    timestamp       DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    name            LowCardinality(String),
    session_id      String,
    event_id        UUID,
    visitor_id      UInt64,
    url             String CODEC(ZSTD(3)),
    path            String CODEC(ZSTD(3)),
    referrer        String CODEC(ZSTD(3)),
    referrer_source LowCardinality(String),
    utm_source      LowCardinality(String),
    utm_medium      LowCardinality(String),
    utm_campaign    String CODEC(ZSTD(3)),
    utm_term        String CODEC(ZSTD(3)),
    utm_content     String CODEC(ZSTD(3)),
    device          LowCardinality(String),
    browser         LowCardinality(String),
    os              LowCardinality(String),
    country         LowCardinality(String),
    click_domain    String CODEC(ZSTD(3)),
    scroll_depth    UInt8,
    visible_ms      UInt32,
    custom_name     LowCardinality(String),
    goals           Array(String),
    meta_keys       Array(LowCardinality(String)),
    meta_values     Array(String) CODEC(ZSTD(3)),
    INDEX session_idx session_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (site_id, toDate(timestamp), name, session_id, timestamp, event_id)
SETTINGS non_replicated_deduplication_window = 1000;
