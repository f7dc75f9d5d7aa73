"""The query API: parameterised ClickHouse SQL -> JSON for the dashboard."""
