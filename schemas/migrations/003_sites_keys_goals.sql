-- Configuration: sites, API keys (stored as SHA-256 of the key, never the key) and goals.
-- Small tables, versioned rows: an update or a delete writes a newer version, and readers
-- use FINAL, so every service sees one current row per id without UPDATE statements.
CREATE TABLE IF NOT EXISTS sites
(
    domain      String,
    timezone    String,
    created_at  DateTime64(3, 'UTC'),
    version     UInt64,
    deleted     UInt8
)
ENGINE = ReplacingMergeTree(version)
ORDER BY domain;

CREATE TABLE IF NOT EXISTS api_keys
(
    key_hash    String,
    site_id     String,
    key_prefix  String,
    created_at  DateTime64(3, 'UTC'),
    version     UInt64,
    revoked     UInt8
)
ENGINE = ReplacingMergeTree(version)
ORDER BY key_hash;

CREATE TABLE IF NOT EXISTS goals
(
    site_id       String,
    goal_id       String,
    name          String,
    type          LowCardinality(String),
    conditions    String,
    logic         LowCardinality(String),
    is_conversion UInt8,
    created_at    DateTime64(3, 'UTC'),
    version       UInt64,
    deleted       UInt8
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (site_id, goal_id);
