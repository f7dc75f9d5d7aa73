from __future__ import annotations

from services.core.schema_files import SCHEMAS_DIR, rendered


def test_schema_files_match_the_structs() -> None:
    for name, text in rendered().items():
        assert (SCHEMAS_DIR / name).read_text() == text, (
            f"schemas/{name} is stale: run .venv/bin/python -m services.core.schema_files")
