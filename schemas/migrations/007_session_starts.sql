-- Where a session's rows live: the sessions table is sorted and partitioned by the day a
-- session started (006), so finding one session by id alone means a bloom-filter probe in
-- every day. This narrow table, sorted by id and filled by a materialized view from every
-- write to sessions (started_at never changes, so its copies collapse to one), gives the
-- day first: a timeline then reads one day of the sessions key. Backfilled once here; a row
-- the view also writes meanwhile is a duplicate that ReplacingMergeTree drops.
CREATE TABLE IF NOT EXISTS session_starts
(
    site_id     LowCardinality(String),
    session_id  String,
    started_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (site_id, session_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS session_starts_from_sessions TO session_starts AS
SELECT site_id, session_id, started_at FROM sessions;

INSERT INTO session_starts (site_id, session_id, started_at)
SELECT DISTINCT site_id, session_id, started_at FROM sessions
