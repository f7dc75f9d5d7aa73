"""`clickport dev` as a real process, on chDB and on a ClickHouse server: data survives a
restart, and an event answered 2xx survives ``kill -9`` while beacons are in flight (O1);
`sites add` works with and without a running dev (O4)."""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from helpers import STORES, click, new_sid, pageview, store_env

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLICKPORT = [sys.executable, "-m", "services.cli"]
UA = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}
SITE = "demo.localhost"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DevProcess:
    def __init__(self, data_dir: pathlib.Path, store_env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.env = {**os.environ, "CLICKPORT_DATA_DIR": str(data_dir),
                    "CLICKPORT_RATE_LIMIT_PER_MINUTE": "0", "CLICKPORT_BATCH_MAX_SECONDS": "0.2",
                    **store_env}
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([*CLICKPORT, "dev", "--port", str(self.port)], cwd=ROOT,
                                     env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError("clickport dev did not become ready")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def key(self) -> str:
        return (self.data_dir / "demo-key.txt").read_text().strip()

    def clicks_by_url(self) -> dict[str, int]:
        response = httpx.get(self.base + "/api/outbound-links",
                             params={"period": "today", "domain": "dest.example"},
                             headers={"x-api-key": self.key()}, timeout=10)
        response.raise_for_status()
        return {row["url"]: row["clicks"] for row in response.json()["results"]}


@pytest.fixture(params=STORES)
def dev(request: pytest.FixtureRequest, data_dir: pathlib.Path) -> Iterator[DevProcess]:
    """``clickport dev`` on chDB in its data dir, and on a ClickHouse server
    (``CLICKPORT_STORE=clickhouse``: the embedded queue in the data dir, the data there)."""
    process = DevProcess(data_dir, store_env(request))
    yield process
    process.stop()


def post(base: str, beacon: dict[str, object]) -> int:
    try:
        return httpx.post(base + "/api/event", content=orjson.dumps(beacon), headers=UA,
                          timeout=5).status_code
    except httpx.HTTPError:
        return 0


def test_data_survives_restart_and_kill_9_loses_no_2xx_event(dev: DevProcess) -> None:
    dev.start()
    sid = new_sid()
    assert post(dev.base, pageview(sid, "http://127.0.0.1/demo", SITE)) == 202
    urls = [f"https://dest.example/{i}" for i in range(400)]
    answered: dict[str, int] = {}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = {pool.submit(post, dev.base, click(sid, u, "x", SITE, "http://127.0.0.1/")): u
                   for u in urls}
        time.sleep(0.4)
        dev.kill()  # mid-stream: some posts were answered, some were in flight
        for future, url in futures.items():
            answered[url] = future.result()
    accepted = {u for u, status in answered.items() if status == 202}
    assert accepted, "the kill came before any beacon was answered; the test proves nothing"
    assert len(accepted) < len(urls), "every beacon finished before the kill"

    dev.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stored = dev.clicks_by_url()
        if accepted <= set(stored):
            break
        time.sleep(0.2)
    missing = accepted - set(stored)
    assert not missing, f"{len(missing)} events answered 202 were lost"
    assert all(count == 1 for count in stored.values()), "an event was stored twice"

    dev.stop()
    dev.start()  # a clean restart keeps everything
    assert dev.clicks_by_url() == stored


def test_sites_add_works_with_and_without_a_running_dev(dev: DevProcess) -> None:
    def sites_add(domain: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLICKPORT, "sites", "add", domain, "--timezone", "Europe/Berlin"],
                              cwd=ROOT, env=dev.env, capture_output=True, text=True, timeout=60)

    offline = sites_add("shop.example.com")
    assert offline.returncode == 0, offline.stderr
    assert "api key: ck_" in offline.stdout
    dev.start()
    online = sites_add("https://www.blog.example.org/")
    assert online.returncode == 0, online.stderr
    assert "site blog.example.org (Europe/Berlin)" in online.stdout
    key = online.stdout.split("api key: ")[1].strip()
    response = httpx.get(dev.base + "/api/outbound-links", headers={"x-api-key": key})
    assert response.status_code == 200 and response.json()["site"] == "blog.example.org"
    sid = new_sid()
    beacon = pageview(sid, "https://blog.example.org/", "blog.example.org")
    assert httpx.post(dev.base + "/api/event", content=orjson.dumps(beacon),
                      headers=UA).json() == {"ok": True}  # accepted at once, not dropped
    bad = sites_add("not a domain")
    assert bad.returncode == 1 and "not a domain" in bad.stderr
