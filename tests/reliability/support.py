"""What the reliability suites share: the embedded app in-process (`EmbeddedRun`), a real
``clickport dev`` subprocess (`DevProcess`), reading every table back, and the figures file
under ``.cache/reliability/``.

chDB serves one data path per process, so at most one `EmbeddedRun` is open at a time in the
test process; each module opens its own and closes it before the next module starts.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
from starlette.testclient import TestClient

from services.core.settings import Settings
from services.embedded.app import DEMO_DOMAIN, build_embedded_app

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIGURES_DIR = ROOT / ".cache" / "reliability"
LONG = os.environ.get("CLICKPORT_LONG_TESTS") == "1"  # CI does not set it
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SITE = DEMO_DOMAIN
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def write_figures(name: str, figures: dict[str, Any]) -> pathlib.Path:
    """Keep a run's figures in ``.cache/reliability/NAME.json`` and print them (-s shows)."""
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    path = FIGURES_DIR / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(f"\n{name}: {json.dumps(figures, sort_keys=True)}")
    return path


def wait_for(check: Callable[[], Any], seconds: float = 20.0, step: float = 0.05) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(step)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def all_tables(store: Any) -> list[str]:
    rows = store.query("SELECT name FROM system.tables WHERE database = currentDatabase() "
                       "ORDER BY name")
    return [r["name"] for r in rows if _IDENT.match(r["name"])]


def dump_tables(store: Any) -> dict[str, str]:
    """Every table of the Store's database as TSV text (every row, every column)."""
    dumped = {}
    for table in all_tables(store):
        result = store._session.query(f"SELECT * FROM {table} FORMAT TSV")  # the real rows
        dumped[table] = result.bytes().decode("utf-8", "replace")
    return dumped


class EmbeddedRun:
    """The whole embedded product in this process (Starlette TestClient, lifespan on)."""

    def __init__(self, data_dir: pathlib.Path, peer: tuple[str, int] = ("192.0.2.10", 50000),
                 **settings: Any) -> None:
        values: dict[str, Any] = {"batch_max_seconds": 0.1, "rate_limit_per_minute": 0}
        values.update(settings)
        self.settings = Settings.from_env({}, data_dir=data_dir, **values)
        self.app = build_embedded_app(self.settings)
        self.client = TestClient(self.app, client=peer, raise_server_exceptions=False)

    def __enter__(self) -> EmbeddedRun:
        self.client.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.__exit__(*exc)

    @property
    def parts(self) -> Any:
        return self.app.state.embedded

    @property
    def store(self) -> Any:
        return self.parts.store

    @property
    def key(self) -> str:
        return str(self.parts.demo_key)

    def post(self, body: bytes | Iterator[bytes], **headers: str) -> httpx.Response:
        return self.client.post("/api/event", content=body, headers={
            "user-agent": FIREFOX, "content-type": "text/plain", **headers})

    def post_json(self, beacon: dict[str, Any], **headers: str) -> httpx.Response:
        return self.post(orjson.dumps(beacon), **headers)

    def count(self, sql: str, **params: Any) -> int:
        return int(self.store.query(sql, params)[0]["n"] or 0)

    def stored_events(self) -> int:
        return self.count("SELECT count() AS n FROM events FINAL")

    def session_events(self) -> int:
        return self.count("SELECT sum(events) AS n FROM sessions FINAL")

    def wait_until_stored(self, events: int, seconds: float = 30.0) -> bool:
        """Both tables hold ``events`` events (the sessionizer wrote events, then sessions)."""
        return bool(wait_for(lambda: self.stored_events() == events
                             and self.session_events() == events, seconds, 0.1))


class DevProcess:
    """``clickport dev`` as a real process on a free loopback port, its own data dir and its
    stdout/stderr kept in files (what an operator's log collector would get)."""

    def __init__(self, data_dir: pathlib.Path, logs_dir: pathlib.Path, **env: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "CLICKPORT_DATA_DIR": str(data_dir), **env}
        self.stdout_path = logs_dir / "dev.stdout"
        self.stderr_path = logs_dir / "dev.stderr"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0, *, ready: bool = True) -> DevProcess:
        """Start it and wait until ``/readyz`` is 200 (``ready=False``: until it serves,
        ``/healthz`` 200, for a start that is meant not to be ready)."""
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "dev", "--port", str(self.port)],
                cwd=ROOT, env=self.env, stdout=out, stderr=err)
        deadline = time.monotonic() + timeout
        path = "/readyz" if ready else "/healthz"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"clickport dev exited: {self.logs()[-2000:]}")
            try:
                if httpx.get(self.base + path, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError("clickport dev did not become ready")

    def key(self) -> str:
        return (self.data_dir / "demo-key.txt").read_text().strip()

    def readyz(self) -> dict[str, Any]:
        response = httpx.get(self.base + "/readyz", timeout=10)
        return dict(response.json())

    def get(self, path: str, **headers: str) -> httpx.Response:
        return httpx.get(self.base + path, headers=headers, timeout=10)

    def stop(self) -> int | None:
        """Graceful stop (SIGTERM: flush, commit); returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def logs(self) -> str:
        parts = [p.read_bytes().decode("utf-8", "replace")
                 for p in (self.stdout_path, self.stderr_path) if p.exists()]
        return "\n".join(parts)


@contextmanager
def stopped_store(data_dir: pathlib.Path) -> Iterator[Any]:
    """The chDB store of a stopped dev process, opened in this process for reading."""
    from services.adapters.chdb_store import ChdbStore

    store = ChdbStore(data_dir / "chdb")
    try:
        yield store
    finally:
        store.close()
