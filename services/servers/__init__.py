"""Composition roots for running the services as separate processes on Kafka and a
ClickHouse server (O2): ``clickport ingest``, ``clickport sessionizer``, ``clickport api``.
Each builds one Starlette app from settings; nothing connects at import."""
