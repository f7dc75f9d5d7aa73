"""``python -m bench [--quick] [--only a,b]``: run the benchmarks, save their figures in
bench/results/<profile>.json and regenerate docs/benchmarks.md (scripts/bench is the one
command; it bootstraps and pins this process to core 0)."""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable

from bench.common import FULL, QUICK, Context, Figure, load_average, machine, say
from bench.report import load_results, save_results, write_docs

# name -> module whose run(ctx) returns figures; run in this order.
BENCHMARKS = {
    "ingest": "bench.ingest_load",
    "sessionizer": "bench.sessionizer_throughput",
    "memory": "bench.session_memory",
    "store": "bench.store_insert",
    "e2e": "bench.pipeline_e2e",
    "e2e_kafka": "bench.pipeline_kafka",
    "e2e_stack": "bench.pipeline_stack",  # separate processes (tests/stack.py)
    "api": "bench.api_latency",
    "tracker": "bench.tracker_click",
    "api_sites": "bench.api_sites",
}
# Run only when named in --only: too long for every run.
OPT_IN = ("api_sites",)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="smoke mode: tiny sizes, one round, under 2 minutes")
    parser.add_argument("--only", default="",
                        help=f"comma-separated subset of: {', '.join(BENCHMARKS)} "
                             f"({', '.join(OPT_IN)} only when named)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    chosen = ([b.strip() for b in args.only.split(",") if b.strip()]
              or [b for b in BENCHMARKS if b not in OPT_IN])
    unknown = [b for b in chosen if b not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    profile = QUICK if args.quick else FULL
    affinity = sorted(os.sched_getaffinity(0))
    say(f"profile {profile.name}; benchmarks {', '.join(chosen)}; this process on cores "
        f"{affinity}")
    workdir = tempfile.mkdtemp(prefix="clickport-bench-")
    ctx = Context(profile, __import__("pathlib").Path(workdir))
    results = load_results(profile.name)
    results["machine"] = machine()
    started = time.time()
    failed = []
    try:
        for name in chosen:
            say(f"=== {name}")
            module = importlib.import_module(BENCHMARKS[name])
            run: Callable[[Context], list[Figure]] = module.run
            t0 = time.monotonic()
            load_before = load_average()
            try:
                figures = run(ctx)
            except Exception as exc:  # one failed benchmark must not lose the others' figures
                traceback.print_exc()
                failed.append(name)
                results["errors"][name] = f"{type(exc).__name__}: {exc}"[:2000]
                save_results(profile.name, results)
                continue
            results["errors"].pop(name, None)
            results["figures"] = [f for f in results["figures"]
                                  if not f["id"].startswith(prefix_of(name))]
            results["figures"] += [f.as_dict() for f in figures]
            results["durations"][name] = round(time.monotonic() - t0, 1)
            results["ran_at"][name] = time.strftime("%Y-%m-%d %H:%M", time.localtime())
            results.setdefault("load", {})[name] = f"{load_before} -> {load_average()}"
            save_results(profile.name, results)
            for f in figures:
                verdict = {True: "pass", False: "MISS", None: "-"}[f.passed]
                ratio = f" ratio {f.ratio:.3f}" if f.ratio is not None else ""
                say(f"  {f.id}: {fmt(f.value)} {f.unit}{ratio} [{verdict}]")
    finally:
        ctx.close()
        if args.keep or failed:
            say(f"scratch kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["last_run_seconds"] = round(time.time() - started, 1)
    save_results(profile.name, results)
    path = write_docs()
    say(f"wrote {path}; total {time.time() - started:.0f}s; failed: {failed or 'none'}")
    return 1 if failed else 0


def prefix_of(name: str) -> str:
    return {"ingest": "ingest.", "sessionizer": "sessionizer.", "memory": "memory.",
            "store": "store.", "e2e": "e2e.", "e2e_kafka": "e2e_kafka.", "e2e_stack": "e2e_stack.",
            "api": "api.", "tracker": "tracker.", "api_sites": "api_sites."}[name]


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


if __name__ == "__main__":
    sys.exit(main())
