-- The latest state of each session. The sessionizer writes a new version of a session's row
-- whenever an event changes it; version is the transport offset of the last applied event,
-- so ReplacingMergeTree(version) read with FINAL shows the newest state, and a replayed write
-- (same version, same content) changes nothing. started_at never changes for a session, so
-- every version lands on the same sort key.
CREATE TABLE IF NOT EXISTS sessions
(
    site_id         LowCardinality(String),
    started_at      DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    session_id      String,
    version         UInt64,
    visitor_id      UInt64,
    last_event_at   DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    pageviews       UInt32,
    events          UInt32,
    entry_page      String CODEC(ZSTD(3)),
    exit_page       String CODEC(ZSTD(3)),
    referrer        String CODEC(ZSTD(3)),
    referrer_source LowCardinality(String),
    utm_source      LowCardinality(String),
    utm_medium      LowCardinality(String),
    utm_campaign    String CODEC(ZSTD(3)),
    device          LowCardinality(String),
    browser         LowCardinality(String),
    os              LowCardinality(String),
    country         LowCardinality(String),
    max_scroll      UInt8,
    visible_ms      UInt64,
    duration        UInt32,
    has_clicked     UInt8,
    has_converted   UInt8,
    goals           Array(String),
    is_bounce       UInt8,
    INDEX session_idx session_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(started_at)
ORDER BY (site_id, toDate(started_at), session_id);
