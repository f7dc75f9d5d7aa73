"""Faults on the production topology as separate OS processes (issue #5, points 4-5): the
`Stack` behind scripts/stack runs a Kafka broker, a ClickHouse server, two `clickport ingest`,
three `clickport sessionizer` and a `clickport api`, each its own process on loopback. A load
generator (tests/beacon_load.py) posts sessions to both ingest processes, failing over to the
other on no answer or a 5xx, while one fault happens:

- a sessionizer SIGKILLed mid-stream (no flush, no commit, no leave-group), a fourth started;
- an ingest process SIGKILLed;
- the ClickHouse server SIGKILLed and started again on its data;
- the Kafka broker SIGKILLed and started again on its data.

After each, the promise of docs/delivery.md (S6): every event answered 2xx is stored exactly
once, nothing is stored that was not published, every session row equals a fault-free fold
of `apply_event` over the events read back from the topic (tests/topic_fold.py), and every
process still running is ready again. The module shares one topology; each scenario first
heals it (every process running and ready, the consumer group stable) and posts to a site of
its own, so one fault cannot leak into the next scenario's numbers.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import kafka_broker
import orjson
import pytest
from aiokafka.errors import KafkaError
from beacon_load import UA, Attempt, BeaconLoad
from helpers import metric_value, new_sid, require_or_skip, wait_until
from stack import Ports, Service, Stack, consumer_group
from topic_fold import fault_free_sessions, stored, topic_messages

from services.adapters.clickhouse_store import ClickHouseStore
from services.core.event import decode_event
from services.core.sites import add_site
from services.core.store import StoreError

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse_server]
SESSIONS = 400  # x 5 beacons per scenario
CONSUMED = "clickport_sessionizer_consumed_total"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if shutil.which("java") is None:
        require_or_skip("CLICKPORT_REQUIRE_KAFKA", "no java: install Java 17+ for the broker")
    try:
        kafka_broker.ensure_kafka_libs()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        require_or_skip("CLICKPORT_REQUIRE_KAFKA",
                        f"no Kafka jars: install Maven so deploy/kafka/pom.xml can fetch them "
                        f"({exc})")
    # Every beacon comes from 127.0.0.1: the per-IP rate limit would drop most of them.
    topology = Stack(tmp_path_factory.mktemp("stack"), Ports.free(),
                     env={"CLICKPORT_RATE_LIMIT_PER_MINUTE": "0"})
    try:
        topology.up(demo=False)
        yield topology
    finally:
        topology.down()
        left = [part.name for part in topology.parts() if part.pid() is not None]
        assert not left, f"still running after down: {left}"


@pytest.fixture
def run(stack: Stack) -> Iterator[Scenario]:
    scenario = Scenario(stack)
    try:
        yield scenario
    finally:
        scenario.close()


def metric(service: Service, name: str) -> float:
    return metric_value(httpx.get(f"{service.url}/metrics", timeout=5).text, name)


def readiness(service: Service) -> dict[str, Any]:
    status, body = service.readiness()
    return dict(orjson.loads(body)) if status else {}


def knows_site(ingest: Service, site: str) -> bool:
    """A click whose destination is not a web URL is dropped as `bad_click_url` only once
    the site is known (`unknown_site` comes first), and is never stored."""
    probe = {"t": "c", "d": site, "u": f"https://{site}/probe", "sid": new_sid(),
             "cu": "javascript:void(0)"}
    answer = httpx.post(f"{ingest.url}/api/event", content=orjson.dumps(probe), headers=UA,
                        timeout=10)
    return bool(answer.status_code == 202 and answer.json().get("dropped") == "bad_click_url")


def group_settled(stack: Stack, members: int) -> bool:
    """Stable with `members` members (a SIGKILLed one stays until its session times out)."""
    try:
        return consumer_group(stack.broker.bootstrap, stack.group) == ("Stable", members)
    except (KafkaError, OSError, TimeoutError):  # the coordinator is still loading
        return False


class Scenario:
    """One fault's run: the topology healed, a site of its own, a load on every ingest."""

    def __init__(self, stack: Stack) -> None:
        self.stack, self.started = stack, time.monotonic()
        stack.heal()
        members = len(stack.running("sessionizer"))
        wait_until(lambda: group_settled(stack, members), 90,
                   f"the consumer group to settle on {members} members")
        self.loads: list[BeaconLoad] = []
        self.site = f"faults-{uuid.uuid4().hex[:10]}.test"
        self.store = ClickHouseStore(stack.clickhouse_url)
        add_site(self.store, self.site)
        for ingest in stack.running("ingest"):
            wait_until(lambda ingest=ingest: knows_site(ingest, self.site), 30,
                       f"{ingest.name} to load the new site")
        self.note(f"healed; site {self.site} known to ingest")

    def note(self, what: str) -> None:
        """A timeline in the captured output, shown when a scenario fails."""
        print(f"[{time.monotonic() - self.started:6.1f}s] {what}", flush=True)

    def load(self) -> BeaconLoad:
        """The load started on every running ingest, returned once a third of its beacons
        are accepted (so a fault made now is mid-stream)."""
        targets = {s.name: s.url for s in self.stack.running("ingest")}
        load = BeaconLoad(targets, self.site, SESSIONS).start()
        self.loads.append(load)
        load.wait_for(lambda attempts: len({a.beacon for a in attempts if a.accepted})
                      >= load.beacons / 3, 120, "a third of the beacons were accepted")
        self.note("a third of the beacons accepted")
        return load

    def check(self, load: BeaconLoad) -> None:
        """Exactly once, nothing extra, sessions as without faults, every process ready."""
        attempts = load.attempts()
        self.note(f"load done: {len(attempts)} attempts, {sum(a.failed for a in attempts)} "
                  f"failed, {load.accepted_beacons()} of {load.beacons} beacons accepted")
        odd = [a for a in attempts if a.dropped or 300 <= a.status < 500]
        assert not odd, f"answers a healthy ingest never gives here: {odd[:5]}"
        assert load.accepted_beacons() == load.beacons, "a beacon was accepted by no ingest"
        accepted = {a.page_url for a in attempts if a.accepted}
        seen: dict[str, Any] = {}
        try:
            wait_until(lambda: self._settled(accepted, seen), 180,
                       "the store to hold exactly what the topic holds")
        except AssertionError:
            raise AssertionError(self._report(accepted, seen)) from None
        self.note(f"settled: {len(seen['rows'])} events, {len(seen['expected'])} sessions")
        ids = collections.Counter(uuid.UUID(str(r["event_id"])).hex for r in seen["rows"])
        urls = collections.Counter(r["url"] for r in seen["rows"])
        assert max(ids.values()) == 1, "an event id is stored twice"
        assert all(urls[url] == 1 for url in accepted), "a 2xx event is not stored exactly once"
        assert len(ids) == len(seen["published"])  # and nothing but what was published
        assert seen["sessions"] == seen["expected"]
        for service in self.stack.services.values():
            if service.pid() is not None:
                service.wait_ready(90)  # no process is left not working after the fault
        self.note("every process ready")

    def close(self) -> None:
        for load in self.loads:
            load.stop()  # a failed scenario's load must not run on into the next one
        self.store.close()

    def _settled(self, accepted: set[str], seen: dict[str, Any]) -> bool:
        try:
            messages = [m for m in topic_messages(self.stack.broker.bootstrap, self.stack.topic)
                        if decode_event(m[2]).site == self.site]
            rows = self.store.query("SELECT event_id, url FROM events FINAL "
                                    "WHERE site_id = {s:String}", {"s": self.site})
            expected = fault_free_sessions(self.stack.topic, messages)
            sessions = stored(self.store, self.site, set(expected))[0]
        except StoreError as exc:
            seen["error"] = exc
            return False
        published = {uuid.UUID(decode_event(m[2]).id).hex for m in messages}
        seen.update(rows=rows, published=published, expected=expected, sessions=sessions)
        stored_ids = {uuid.UUID(str(r["event_id"])).hex for r in rows}
        return (stored_ids == published and accepted <= {r["url"] for r in rows}
                and sessions == expected)

    def _report(self, accepted: set[str], seen: dict[str, Any]) -> str:
        if "rows" not in seen:
            return f"the store never answered after the fault: {seen.get('error')!r}"
        urls = {r["url"] for r in seen["rows"]}
        stored_ids = {uuid.UUID(str(r["event_id"])).hex for r in seen["rows"]}
        differ = [sid for sid in seen["expected"]
                  if seen["sessions"].get(sid) != seen["expected"][sid]]
        example = ""
        if differ:
            sid = differ[0]
            example = (f", e.g. {sid}: stored {seen['sessions'].get(sid)}, "
                       f"fault-free {seen['expected'][sid]}")
        return (f"{len(accepted - urls)} of {len(accepted)} 2xx events not stored; "
                f"{len(seen['published'] - stored_ids)} published events not stored, "
                f"{len(stored_ids - seen['published'])} stored but never published; "
                f"{len(differ)} of {len(seen['expected'])} sessions differ from a fault-free "
                f"run{example}")


def after(attempts: list[Attempt], moment: float) -> list[Attempt]:
    return [a for a in attempts if a.at > moment]


def test_a_sessionizer_sigkilled_mid_stream_and_a_fourth_started(
        stack: Stack, run: Scenario) -> None:
    before = {s.name: metric(s, CONSUMED) for s in stack.running("sessionizer")}
    load = run.load()

    def busy() -> list[Service]:  # consumed this scenario's events, so holds some state
        return [s for s in stack.running("sessionizer") if metric(s, CONSUMED) > before[s.name]]

    wait_until(busy, 60, "a sessionizer to consume this scenario's events")
    victim = busy()[0]
    victim.kill()
    killed_at = time.monotonic()
    run.note(f"killed {victim.name}")
    stack.add("sessionizer")
    run.note("a fourth sessionizer is ready")
    load.join()
    assert after(load.attempts(), killed_at), "the load ended before the kill"
    run.check(load)


def test_an_ingest_process_sigkilled_clients_fail_over_to_the_other(
        stack: Stack, run: Scenario) -> None:
    load = run.load()
    victim, survivor = stack.running("ingest")[:2]
    victim.kill()
    killed_at = time.monotonic()
    run.note(f"killed {victim.name}")
    load.wait_for(lambda attempts: any(a.target == victim.name and a.failed
                                       for a in after(attempts, killed_at)),
                  60, f"a client to find {victim.name} gone")
    load.join()
    assert any(a.accepted and a.target == survivor.name
               for a in after(load.attempts(), killed_at)), "no beacon failed over"
    run.check(load)


def test_the_clickhouse_server_sigkilled_mid_stream_and_started_on_its_data(
        stack: Stack, run: Scenario) -> None:

    def retries() -> int:
        return sum(int(readiness(s).get("store_retries", 0))
                   for s in stack.running("sessionizer"))

    retried = retries()
    load = run.load()
    wait_until(lambda: stored(run.store, run.site, set())[1] > 0, 60,
               "some of this scenario's events to be stored")
    stack.clickhouse.kill()
    run.note("killed the ClickHouse server")
    wait_until(lambda: retries() > retried, 60, "a sessionizer to find the store gone")
    stack.clickhouse.start()
    run.note("the ClickHouse server is up again")
    load.join()
    run.check(load)


def test_the_kafka_broker_killed_mid_stream_and_started_on_its_data(
        stack: Stack, run: Scenario) -> None:
    load = run.load()
    stack.broker.kill()
    killed_at = time.monotonic()
    run.note("killed the Kafka broker")
    load.wait_for(lambda attempts: any(a.failed for a in after(attempts, killed_at)), 60,
                  "ingest to fail a beacon while Kafka is down")
    stack.broker.restart()
    run.note("the Kafka broker is up again")
    load.join()
    run.check(load)
