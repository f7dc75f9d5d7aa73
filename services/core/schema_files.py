"""Writes the contracts in ``schemas/`` from the structs they describe:
``beacon.schema.json`` (what a tracker may send) and ``event.schema.json`` (the transport
message). A test fails when a file is stale; regenerate with
``.venv/bin/python -m services.core.schema_files``."""

from __future__ import annotations

import json
import pathlib

from services.core.beacon import beacon_json_schema
from services.core.event import event_json_schema

SCHEMAS_DIR = pathlib.Path(__file__).resolve().parents[2] / "schemas"


def rendered() -> dict[str, str]:
    return {
        "beacon.schema.json": json.dumps(beacon_json_schema(), indent=2, sort_keys=True) + "\n",
        "event.schema.json": json.dumps(event_json_schema(), indent=2, sort_keys=True) + "\n",
    }


if __name__ == "__main__":
    for name, text in rendered().items():
        (SCHEMAS_DIR / name).write_text(text)
        print(f"wrote schemas/{name}")
