-- The replay watermark becomes (stream, offset), a stream being one topic partition or one
-- embedded queue file, and the row version becomes the number of events applied. With the
-- offset alone as version, a session whose key moved to another partition (the partition
-- count changed), or whose events continue on a new topic or queue file, would have its new
-- events taken for replays, and a lower offset would lose to the older row in FINAL. The
-- events count grows by one per applied event on any stream; a replay reproduces it exactly.
ALTER TABLE sessions
    ADD COLUMN IF NOT EXISTS last_stream UInt32 AFTER version,
    ADD COLUMN IF NOT EXISTS last_offset UInt64 AFTER last_stream;
