"""Print the package's requirements from pyproject.toml, one per line, for the image build
(deploy/Dockerfile installs them in a layer of their own, before the code is copied in, so
that a code change does not reinstall every dependency).

    python deploy/docker/requirements.py [pyproject.toml]

Environment: EXTRAS (comma-separated optional-dependency groups to add, e.g. "geoip") and
WITH_CHDB ("0" leaves out chdb, the embedded store, which the scale-out services never import).
"""

from __future__ import annotations

import os
import re
import sys
import tomllib


def requirements(pyproject: str, extras: str, with_chdb: bool) -> list[str]:
    with open(pyproject, "rb") as file:
        project = tomllib.load(file)["project"]
    wanted = list(project["dependencies"])
    for extra in filter(None, (e.strip() for e in extras.split(","))):
        try:
            wanted += project["optional-dependencies"][extra]
        except KeyError:
            raise SystemExit(f"unknown extra {extra!r} in EXTRAS") from None
    if not with_chdb:
        wanted = [req for req in wanted if _name(req) != "chdb"]
    return wanted


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml"
    with_chdb = os.environ.get("WITH_CHDB", "1") != "0"
    print("\n".join(requirements(path, os.environ.get("EXTRAS", ""), with_chdb)))
