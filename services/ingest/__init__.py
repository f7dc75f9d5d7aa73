"""The ingest service: validate a beacon, enrich it, drop what must not be stored, publish."""
