-- Random visitor-id salts, one per UTC day, shared by every ingest replica (I3; design and
-- privacy argument in docs/ingest.md). A salt must be unrecoverable once its day is over, so
-- rows expire by TTL two days after their day starts (today's and yesterday's survive) and
-- TTL merges run hourly. Replicas race to create a day's salt: each inserts a candidate with
-- the insert_deduplication_token "salt-DAY", so the first insert wins and later ones are
-- dropped; readers take min(salt) per day, which stays deterministic even where that
-- deduplication is not available. ORDER BY (day, salt) so distinct candidates never
-- collapse into an arbitrary survivor on merge (that would change the winner).
CREATE TABLE IF NOT EXISTS visitor_salts
(
    day         Date,
    salt        String,
    created_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (day, salt)
TTL day + INTERVAL 2 DAY
SETTINGS non_replicated_deduplication_window = 100, merge_with_ttl_timeout = 3600;
