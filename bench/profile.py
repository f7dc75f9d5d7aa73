"""Where the time goes: sample a stage's hot path with py-spy (``pip install py-spy``; not
a project dependency) and print the top frames, self and inclusive.

    python -m bench.profile ingest-memory|ingest-dev|ingest-kafka|sessionizer|
                            sessionizer-server|store

(sessionizer-server: into a ClickHouse server pinned to core 0, as benchmark 2a runs it.)

Each target runs the same setup as its benchmark (same sizes as the full profile, same
cores); the raw py-spy samples are left in the scratch directory it prints.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

from bench.common import FULL, PYTHON, Context, Server, pinned, say

SPY = str(pathlib.Path(PYTHON).with_name("py-spy"))


def summarize(raw: pathlib.Path, top: int = 25) -> str:
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        total += count
        frames = stack.split(";")
        own[frames[-1]] += count
        for frame in set(frames):
            incl[frame] += count
    out = [f"{total} samples", "-- self (top):"]
    out += [f"{100 * c / total:5.1f}%  {f}" for f, c in own.most_common(top)]
    out += ["-- inclusive, frames in services/ and bench/ (top):"]
    ours = [(f, c) for f, c in incl.most_common() if "services/" in f or "bench/" in f]
    out += [f"{100 * c / total:5.1f}%  {f}" for f, c in ours[:top]]
    return "\n".join(out)


def record(pid: int, seconds: int, out: pathlib.Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([SPY, "record", "-p", str(pid), "-d", str(seconds), "-r", "250",
                             "-f", "raw", "-o", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def profile_ingest(ctx: Context, variant: str) -> pathlib.Path:
    from bench.ingest_load import build_servers
    from bench.workload import click_bodies
    from bench.wrk_load import BodyFile, run_wrk

    servers = build_servers(ctx)
    server: Server = servers[variant]
    bodies = BodyFile(click_bodies(2000))
    out = ctx.workdir / f"ingest-{variant}.txt"
    try:
        server.start()
        run_wrk(server.base, bodies, seconds=2, connections=32)
        assert server.proc is not None
        spy = record(server.proc.pid, 10, out)
        result = run_wrk(server.base, bodies, seconds=12, connections=ctx.profile.wrk_connections)
        spy.wait()
        say(f"under profile: {result.brief()}")
    finally:
        server.stop()
        bodies.close()
    return out


def profile_child(ctx: Context, argv: list[str], name: str) -> pathlib.Path:
    out = ctx.workdir / f"{name}.txt"
    subprocess.run(pinned("1", [SPY, "record", "-r", "250", "-f", "raw", "-o", str(out),
                                "--nonblocking", "--", *argv]), check=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("target", choices=["ingest-memory", "ingest-dev", "ingest-kafka",
                                           "sessionizer", "sessionizer-server", "store"])
    args = parser.parse_args()
    if shutil.which(SPY) is None and not pathlib.Path(SPY).exists():
        sys.exit("py-spy is missing: .venv/bin/pip install py-spy")
    ctx = Context(FULL, pathlib.Path(tempfile.mkdtemp(prefix="clickport-profile-")))
    try:
        if args.target.startswith("ingest-"):
            raw = profile_ingest(ctx, args.target.removeprefix("ingest-"))
        elif args.target in ("sessionizer", "sessionizer-server"):
            from bench.clickhouse import local_server, server_pid
            from bench.kafka import new_topic
            from bench.sessionizer_throughput import PARTITIONS, SERVER_STORE_CORE, prefill

            n = FULL.sessionizer_events
            topic = new_topic(ctx.broker.bootstrap, f"profile.{uuid.uuid4().hex[:6]}",
                              PARTITIONS)
            asyncio.run(prefill(ctx.broker.bootstrap, topic, n))
            argv = [PYTHON, "-m", "bench.sessionizer_throughput", "sessionizer",
                    "--bootstrap", ctx.broker.bootstrap, "--topic", topic, "--count", str(n)]
            if args.target == "sessionizer":
                raw = profile_child(ctx, [*argv, "--dir", str(ctx.scratch("ses"))],
                                    "sessionizer")
            else:
                with local_server(ctx.scratch("clickhouse"), SERVER_STORE_CORE) as server:
                    raw = profile_child(ctx, [*argv, "--clickhouse-url", server.url("profile"),
                                              "--server-pid", str(server_pid(server))],
                                        "sessionizer-server")
        else:
            raw = profile_child(ctx, [PYTHON, "-m", "bench.store_insert", "--rows",
                                      str(FULL.store_rows), "--rounds", "1", "--dir",
                                      str(ctx.scratch("store"))], "store")
        time.sleep(0.5)
        print(summarize(raw))
        print(f"raw samples: {raw}")
    finally:
        ctx.close()


if __name__ == "__main__":
    main()
