"""Services import core (and their own package), never each other; adapters import only
core. Checked on the source, so a lazy import inside a function counts too."""

from __future__ import annotations

import ast
import pathlib

import pytest

SERVICES = pathlib.Path(__file__).resolve().parents[2] / "services"
ALLOWED = {
    "core": {"core"},
    "adapters": {"core", "adapters"},
    "ingest": {"core", "ingest"},
    "sessionizer": {"core", "sessionizer"},
    "api": {"core", "api"},
}


def imported_packages(path: pathlib.Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "services" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    for path in (SERVICES / package).rglob("*.py"):
        wrong = imported_packages(path) - ALLOWED[package]
        assert not wrong, f"{path.relative_to(SERVICES)} imports services.{wrong}"
