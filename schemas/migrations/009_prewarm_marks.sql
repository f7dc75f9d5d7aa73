-- Point reads without a first-touch penalty (bench/ANALYSIS.md, section 5).
--
-- A timeline reads a granule or two of one day's part in session_starts, sessions and
-- events. The first read of a part since the process started also loads that part's marks
-- and primary index from disk: on the bench's 10 M set, ~480 marks and ~1 ms of waiting per
-- timeline, ~7 ms more CPU (25.8 against 18.8 ms), and a p95 of 37 against 22 ms over a
-- pass of 90 sessions spread over 30 days. A dashboard process meets every day's parts for
-- the first time, and so did many of the bench's timeline samples.
--
-- With these settings the marks and primary index of every part are loaded when the store
-- opens (and kept for new parts as inserts and merges write them): opening the 10 M set took
-- 0.52-0.56 s against 0.43 s, and the first pass then costs what a warm one does. The cache
-- this fills is the engine's mark cache (94,510 marks for the 10 M set, growing with the
-- rows; capped by the server's mark_cache_size). Only table settings change; no data is
-- rewritten.
ALTER TABLE events MODIFY SETTING prewarm_mark_cache = 1, primary_key_lazy_load = 0;

ALTER TABLE sessions MODIFY SETTING prewarm_mark_cache = 1, primary_key_lazy_load = 0;

ALTER TABLE session_starts MODIFY SETTING prewarm_mark_cache = 1, primary_key_lazy_load = 0
