"""A load generator for several ingest processes, with a client's failover.

Sessions of five beacons each are posted from a few threads, a session in order, each session
to its preferred ingest (round robin over the targets). A beacon that gets no answer
(refused, reset, timed out) or a 5xx is posted again to the next target, and around again
with a growing pause, until one answers 2xx or `give_up_s` has passed. Each post is an
*attempt* with a page URL of its own (``?b=BEACON&a=ATTEMPT``): ingest stores that URL on
the event row, so every stored row can be traced to the request that produced it, and an
attempt that failed but still reached Kafka is told apart from the retry that succeeded.
Every attempt is recorded: who was asked and what it answered.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from helpers import click, engagement, new_sid, pageview

UA = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}
BEACONS_PER_SESSION = 5


@dataclass(frozen=True)
class Attempt:
    beacon: int
    attempt: int
    target: str  # the ingest process asked
    status: int  # 0: no answer
    dropped: str  # a 2xx's drop reason; "" when accepted (or no 2xx)
    page_url: str
    at: float  # time.monotonic() of the answer

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300 and not self.dropped

    @property
    def failed(self) -> bool:
        return self.status == 0 or self.status >= 500


def session_beacons(site: str, sid: str, i: int) -> list[tuple[str, dict[str, Any]]]:
    """(page, beacon without its page URL) for one session: views, clicks, engagement."""
    page = f"https://{site}/p{i % 7}"
    return [(page, pageview(sid, "", site)),
            (page, click(sid, f"https://www.dest{i % 5}.example/{i}", f"deal {i}", site)),
            (page, engagement(sid, 10 * (i % 10), 1000 * (i % 20), site)),
            (page + "/next", pageview(sid, "", site)),
            (page + "/next", click(sid, f"https://dest{i % 5}.example/again", "again", site))]


class BeaconLoad:
    def __init__(self, targets: Mapping[str, str], site: str, sessions: int, *,
                 threads: int = 8, pause_s: float = 0.03, give_up_s: float = 150.0) -> None:
        self.targets = list(targets.items())  # (name, base URL)
        self.site, self.sessions, self.pause_s, self.give_up_s = site, sessions, pause_s, give_up_s
        self._todo: queue.Queue[int] = queue.Queue()
        for i in range(sessions):
            self._todo.put(i)
        self._lock = threading.Lock()
        self._attempts: list[Attempt] = []
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._work, name=f"load-{n}", daemon=True)
                         for n in range(threads)]

    @property
    def beacons(self) -> int:
        return self.sessions * BEACONS_PER_SESSION

    def start(self) -> BeaconLoad:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """End early (a failed test): no new attempt is made."""
        self._stopping.set()
        self.join(60)

    def done(self) -> bool:
        return not any(thread.is_alive() for thread in self._threads)

    def join(self, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if not self.done():
            raise AssertionError(f"the load did not finish in {timeout}s")

    def attempts(self) -> list[Attempt]:
        with self._lock:
            return list(self._attempts)

    def accepted_beacons(self) -> int:
        return len({a.beacon for a in self.attempts() if a.accepted})

    def wait_for(self, check: Callable[[list[Attempt]], bool], seconds: float, what: str
                 ) -> None:
        deadline = time.monotonic() + seconds
        while not check(self.attempts()):
            if self.done() or time.monotonic() > deadline:
                how = "ended" if self.done() else f"ran {seconds}s"
                raise AssertionError(f"the load {how} before {what}")
            time.sleep(0.05)

    def _work(self) -> None:
        with httpx.Client(timeout=20.0, headers=UA) as client:
            while not self._stopping.is_set():
                try:
                    i = self._todo.get_nowait()
                except queue.Empty:
                    return
                sid = new_sid()
                for k, (page, beacon) in enumerate(session_beacons(self.site, sid, i)):
                    self._deliver(client, i * BEACONS_PER_SESSION + k, i, page, beacon)
                    time.sleep(self.pause_s)

    def _deliver(self, client: httpx.Client, number: int, session: int, page: str,
                 beacon: dict[str, Any]) -> None:
        deadline = time.monotonic() + self.give_up_s
        attempt = 0
        while time.monotonic() < deadline and not self._stopping.is_set():
            name, base = self.targets[(session + attempt) % len(self.targets)]
            url = f"{page}?b={number}&a={attempt}"
            status, dropped = self._post(client, base, {**beacon, "u": url})
            answer = Attempt(number, attempt, name, status, dropped, url, time.monotonic())
            with self._lock:
                self._attempts.append(answer)
            if not answer.failed:
                return  # accepted, dropped or 4xx: the checks look at which
            attempt += 1
            if attempt % len(self.targets) == 0:  # every target failed this round
                time.sleep(min(0.1 * 2 ** (attempt // len(self.targets)), 2.0))

    @staticmethod
    def _post(client: httpx.Client, base: str, beacon: dict[str, Any]) -> tuple[int, str]:
        try:
            response = client.post(f"{base}/api/event", content=orjson.dumps(beacon))
        except httpx.HTTPError:
            return 0, ""
        dropped = ""
        if 200 <= response.status_code < 300:
            dropped = str(orjson.loads(response.content).get("dropped", ""))
        return response.status_code, dropped
