-- Dashboard reads at 10 M events per month (docs/api.md, bench/ANALYSIS.md):
--
-- * Partitions by day, not month, and a partition whose parts have all been idle for an hour
--   is merged into one part. FINAL then has nothing to collapse in a finished day (with
--   do_not_merge_across_partitions_select_final a single-part partition is read as is), so
--   only today and days that just received a late write pay for it. A session's versions
--   share started_at and an event's copies share timestamp, so both still always meet in one
--   partition, which is what lets FINAL work partition by partition.
-- * events.session_key is the 128-bit SipHash of session_id, the very value uniqExact hashes
--   a String to, computed once at insert instead of on every read: uniqExact(session_key) is
--   uniqExact(session_id) at a fraction of the cost.
-- * events.click_url is the click's destination URL out of meta_values, so the outbound
--   drill-down groups by a column instead of searching two arrays per row.
-- * click_domain is LowCardinality: a site's links go to a few thousand domains at most.
--
-- The tables are rebuilt with the same columns (CREATE ... AS) and their rows copied; nothing
-- else changes for writers.
--
-- Restart-safe (core/store.py run_migrations): stopped anywhere, the migration runs again from
-- its start. The swap is one atomic EXCHANGE (a RENAME of two tables is two steps), after
-- which the old table goes by the *_by_day name and is dropped. Each table's rebuild is
-- skipped once the swap has happened (the rebuilt events has session_key, the rebuilt
-- sessions is partitioned by day), so a repeated EXCHANGE can never swap the old table back;
-- before the swap, a repeated copy adds rows that collapse with their first copies (same sort
-- key, ReplacingMergeTree); the drops are IF EXISTS.

-- skip if: SELECT 1 FROM system.columns WHERE database = currentDatabase() AND table = 'events' AND name = 'session_key'
CREATE TABLE IF NOT EXISTS events_by_day AS events
ENGINE = ReplacingMergeTree
PARTITION BY toDate(timestamp)
ORDER BY (site_id, toDate(timestamp), name, session_id, timestamp, event_id)
SETTINGS non_replicated_deduplication_window = 1000,
         min_age_to_force_merge_seconds = 3600,
         min_age_to_force_merge_on_partition_only = 1;

-- skip if: SELECT 1 FROM system.columns WHERE database = currentDatabase() AND table = 'events' AND name = 'session_key'
ALTER TABLE events_by_day
    MODIFY COLUMN click_domain LowCardinality(String),
    ADD COLUMN IF NOT EXISTS session_key UInt128
        MATERIALIZED reinterpretAsUInt128(sipHash128(session_id)),
    ADD COLUMN IF NOT EXISTS click_url String
        MATERIALIZED meta_values[indexOf(meta_keys, 'click_url')] CODEC(ZSTD(3));

-- skip if: SELECT 1 FROM system.columns WHERE database = currentDatabase() AND table = 'events' AND name = 'session_key'
INSERT INTO events_by_day SELECT * FROM events
SETTINGS max_partitions_per_insert_block = 0;

-- skip if: SELECT 1 FROM system.columns WHERE database = currentDatabase() AND table = 'events' AND name = 'session_key'
EXCHANGE TABLES events AND events_by_day;

DROP TABLE IF EXISTS events_by_day;

-- skip if: SELECT 1 FROM system.tables WHERE database = currentDatabase() AND name = 'sessions' AND partition_key = 'toDate(started_at)'
CREATE TABLE IF NOT EXISTS sessions_by_day AS sessions
ENGINE = ReplacingMergeTree(version)
PARTITION BY toDate(started_at)
ORDER BY (site_id, toDate(started_at), session_id)
SETTINGS min_age_to_force_merge_seconds = 3600,
         min_age_to_force_merge_on_partition_only = 1;

-- skip if: SELECT 1 FROM system.tables WHERE database = currentDatabase() AND name = 'sessions' AND partition_key = 'toDate(started_at)'
INSERT INTO sessions_by_day SELECT * FROM sessions
SETTINGS max_partitions_per_insert_block = 0;

-- skip if: SELECT 1 FROM system.tables WHERE database = currentDatabase() AND name = 'sessions' AND partition_key = 'toDate(started_at)'
EXCHANGE TABLES sessions AND sessions_by_day;

DROP TABLE IF EXISTS sessions_by_day
