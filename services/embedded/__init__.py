"""The embedded default (O1): ingest, sessionizer, API and tracker in one process, on the
disk queue and chDB under ``CLICKPORT_DATA_DIR``. A composition root, not a service."""
