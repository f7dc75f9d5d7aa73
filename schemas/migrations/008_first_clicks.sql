-- Unique outbound clicks without hashing every session id (docs/api.md, bench/ANALYSIS.md).
--
-- The sessionizer keeps each session's clicked domains with the time of each one's first
-- click (sessions.clicked_domains / clicked_first_at, read back when a session is reloaded),
-- and stamps every click row with its (session, domain) pair's first_click_at and whether it
-- is that click. Unique clicks in a period are then the first clicks in it, plus the distinct
-- sessions among the few clicks in it whose pair was first clicked outside it: exact, and on
-- 10 M events most of the cost of uniqExact over 2 M keys goes.
--
-- first_click_at keeps the default codec: it is mostly zeros (every non-click row) and is
-- read by every outbound request (a 5,000-row insert took 54-59 ms median with DoubleDelta
-- on it, 51-55 ms without, in one noisy comparison).
--
-- Two markers below any period: first_click_at 1 ms is "untracked" (a click of a session
-- stored before this migration, or to a domain past the session's 200th: counted by
-- uniqExactIf, exactly), and 0, the default, is "unmarked" (a row written before this
-- migration or by an older release during a rollback: a period that has one is counted by
-- hashing every session, as before).
ALTER TABLE events
    ADD COLUMN IF NOT EXISTS first_click_at DateTime64(3, 'UTC')
        DEFAULT toDateTime64(0, 3, 'UTC'),
    ADD COLUMN IF NOT EXISTS is_first_click UInt8 DEFAULT 0;

ALTER TABLE sessions
    ADD COLUMN IF NOT EXISTS clicked_domains Array(LowCardinality(String)),
    ADD COLUMN IF NOT EXISTS clicked_first_at Array(DateTime64(3, 'UTC'))
