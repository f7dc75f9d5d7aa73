"""``scripts/soak [--minutes 30]``: the embedded product under mixed traffic with periodic
SIGKILLs and one disk-full episode; then every event answered 2xx must be stored exactly
once. Loopback only, bounded in time; not part of CI (it takes half an hour).

A real ``clickport dev`` process runs on a data dir on its own small tmpfs (when this runs as
root and can mount one; else on a temp dir, and the disk-full episode is left out and said
so). Posters send session traffic (pageview, click, engagement, custom event, click) at a
steady rate, each beacon's page URL marked with its sequence number, and remember which got
a 2xx. Every ``--kill-every`` seconds the process is killed with SIGKILL and started again
on the same data. Halfway, a filler file takes the tmpfs's free space for a minute, then is
removed. At the end the queue drains, the process stops, and the stored events are matched
against the 2xx answers by sequence number. Figures go to bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from bench.common import say
from bench.workload import DESKTOP_UA, session_id

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "soak.json"
SITE = "demo.localhost"
TMPFS_MB = 768


@dataclass
class Tally:
    accepted: set[int] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def beacons(rng: random.Random, seq: int) -> list[tuple[int, dict[str, Any]]]:
    """One session's five beacons, sequence numbers seq..seq+4 in their page URLs."""
    sid = session_id(rng)
    page = f"http://{SITE}/soak/page{seq % 7}"
    kinds: list[dict[str, Any]] = [
        {"t": "p", "r": "https://www.google.com/"},
        {"t": "c", "cu": f"https://shop{seq % 40}.example/p/{seq}", "ct": "Buy", "ck": "primary"},
        {"t": "e", "sd": seq % 100, "vt": 1000 + seq % 9000},
        {"t": "x", "n": "signup", "p": {"plan": "pro"}},
        {"t": "c", "cu": f"https://www.amazon.com/dp/B0{seq % 10**8:08d}", "ct": "Amazon",
         "ck": "primary"},
    ]
    return [(seq + i, {"d": SITE, "sid": sid, "u": f"{page}?n={seq + i}", **kind})
            for i, kind in enumerate(kinds)]


class Dev:
    def __init__(self, data_dir: pathlib.Path, port: int, log: pathlib.Path) -> None:
        self.data_dir, self.port, self.log = data_dir, port, log
        self.base = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> None:
        env = {**os.environ, "CLICKPORT_DATA_DIR": str(self.data_dir),
               "CLICKPORT_RATE_LIMIT_PER_MINUTE": "0"}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "dev", "--port", str(self.port)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"clickport dev exited {self.proc.returncode}; see {self.log}")
            if self.readyz(timeout=2).get("ready"):
                return
            time.sleep(0.2)
        raise TimeoutError(f"clickport dev not ready after {timeout}s; see {self.log}")

    def readyz(self, timeout: float = 10.0) -> dict[str, Any]:
        try:
            body: dict[str, Any] = httpx.get(self.base + "/readyz", timeout=timeout).json()
            return body
        except (httpx.HTTPError, ValueError):
            return {}

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.kill()


def poster(dev: Dev, tally: Tally, stop: threading.Event, rate: float, seed: int,
           offset: int) -> None:
    """Post beacons at ``rate`` per second until ``stop``; sequence numbers from ``offset``
    in steps of a million per poster, so posters never share one."""
    rng = random.Random(seed)
    seq = offset
    interval = 1.0 / rate
    next_at = time.monotonic()
    with httpx.Client(base_url=dev.base, timeout=10,
                      headers={"user-agent": DESKTOP_UA, "content-type": "text/plain"}) as c:
        while not stop.is_set():
            for number, beacon in beacons(rng, seq):
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                try:
                    status = c.post("/api/event", content=orjson.dumps(beacon)).status_code
                except httpx.HTTPError as exc:
                    with tally.lock:
                        tally.errors[type(exc).__name__] += 1
                    continue
                with tally.lock:
                    tally.statuses[status] += 1
                    if 200 <= status < 300:
                        tally.accepted.add(number)
            seq += 5


def mount_tmpfs(path: pathlib.Path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m", "tmpfs",
                              str(path)], capture_output=True)
    return mounted.returncode == 0


def fill(path: pathlib.Path) -> pathlib.Path:
    """Take every free byte of the file system under ``path``."""
    filler = path / "filler.bin"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * (1 << 20))
                out.flush()
        except OSError:
            pass
    return filler


def stored_numbers(data_dir: pathlib.Path) -> tuple[list[int], int, int]:
    """(sequence numbers of the stored events, rows, distinct event ids), read from chDB
    after the process stopped."""
    code = ("import json, pathlib, sys; from services.adapters.chdb_store import ChdbStore; "
            "s = ChdbStore(pathlib.Path(sys.argv[1])); "
            "urls = [r['url'] for r in s.query('SELECT url FROM events FINAL')]; "
            "c = s.query('SELECT count() AS n, uniqExact(event_id) AS ids FROM events')[0]; "
            "print(json.dumps([urls, c['n'], c['ids']]))")
    out = subprocess.run([sys.executable, "-c", code, str(data_dir / "chdb")], cwd=ROOT,
                         capture_output=True, check=True, timeout=600).stdout
    urls, rows, ids = json.loads(out)
    return [int(u.rsplit("?n=", 1)[1]) for u in urls if "?n=" in u], int(rows), int(ids)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=150.0, help="beacons per second, total")
    parser.add_argument("--posters", type=int, default=3)
    parser.add_argument("--kill-every", type=float, default=180.0, help="seconds between kills")
    parser.add_argument("--port", type=int, default=8390)
    args = parser.parse_args(argv)

    work = pathlib.Path(tempfile.mkdtemp(prefix="clickport-soak-"))
    data_dir = work / "data"
    on_tmpfs = mount_tmpfs(data_dir)
    dev = Dev(data_dir, args.port, work / "dev.log")
    tally = Tally()
    stop = threading.Event()
    figures: dict[str, Any] = {"minutes": args.minutes, "rate": args.rate,
                               "tmpfs_mb": TMPFS_MB if on_tmpfs else None, "kills": 0,
                               "disk_full_seconds": 0.0, "started": time.strftime("%F %T")}
    say(f"soak: {args.minutes} min at {args.rate}/s, data on "
        f"{'a ' + str(TMPFS_MB) + ' MB tmpfs' if on_tmpfs else 'disk (no disk-full episode)'}"
        f", log {dev.log}")
    try:
        dev.start()
        threads = [threading.Thread(target=poster, daemon=True,
                                    args=(dev, tally, stop, args.rate / args.posters, i,
                                          (i + 1) * 1_000_000_000)) for i in range(args.posters)]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        end = started + args.minutes * 60
        next_kill = started + args.kill_every
        disk_full_at = started + args.minutes * 30 + args.kill_every / 2
        while time.monotonic() < end:
            time.sleep(1)
            now = time.monotonic()
            if on_tmpfs and figures["disk_full_seconds"] == 0 and now >= disk_full_at:
                say("disk full for 60 s")
                t0 = time.monotonic()
                filler = fill(data_dir)
                time.sleep(60)
                filler.unlink()
                figures["disk_full_seconds"] = round(time.monotonic() - t0, 1)
                figures["readyz_after_disk_full"] = dev.readyz()
            elif now >= next_kill:
                say(f"SIGKILL #{figures['kills'] + 1} at {now - started:.0f} s; "
                    f"{len(tally.accepted)} accepted so far")
                dev.kill()
                figures["kills"] += 1
                dev.start()
                next_kill = time.monotonic() + args.kill_every
        stop.set()
        for thread in threads:
            thread.join(30)

        def drained() -> bool:
            ready = dev.readyz()
            return bool(ready) and ready.get("queue_pending") == 0
        deadline = time.monotonic() + 300
        while not drained() and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(2)  # one batch timer past the last consume
        dev.stop()
        numbers, rows, ids = stored_numbers(data_dir)
    finally:
        stop.set()
        dev.kill()
        if on_tmpfs:
            subprocess.run(["umount", str(data_dir)], capture_output=True)
    stored = Counter(numbers)
    accepted = tally.accepted
    figures.update({
        "answered_2xx": len(accepted), "statuses": {str(k): v for k, v in tally.statuses.items()},
        "client_errors": dict(tally.errors), "stored": len(stored),
        "accepted_not_stored": len(accepted - stored.keys()),
        "stored_more_than_once": sum(1 for n in stored.values() if n > 1),
        "stored_without_2xx": len(stored.keys() - accepted),
        "rows_minus_distinct_event_ids": rows - ids,
        "exact": not (accepted - stored.keys()) and all(n == 1 for n in stored.values()),
        "ended": time.strftime("%F %T")})
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2, sort_keys=True, default=str) + "\n")
    say(json.dumps(figures, sort_keys=True, default=str))
    shutil.rmtree(work, ignore_errors=True)
    return 0 if figures["exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
