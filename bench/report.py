"""Results on disk (bench/results/<profile>.json) and docs/benchmarks.md made from them.

The document has one table per profile (the full run's first; the quick smoke run's after),
every figure with its median, spread (min-max over N runs), baseline, ratio (median of the
per-round ratios of interleaved runs), target, pass/miss and the exact command, followed by
bench/ANALYSIS.md (hand-written: what missed and why) verbatim.
"""

from __future__ import annotations

import pathlib
from typing import Any

import orjson

from bench.common import RESULTS, ROOT, Figure

DOC = ROOT / "docs" / "benchmarks.md"
ANALYSIS = ROOT / "bench" / "ANALYSIS.md"


def results_path(profile: str) -> pathlib.Path:
    return RESULTS / f"{profile}.json"


def load_results(profile: str) -> dict[str, Any]:
    path = results_path(profile)
    data: dict[str, Any] = orjson.loads(path.read_bytes()) if path.is_file() else {}
    data.setdefault("profile", profile)
    data.setdefault("figures", [])
    data.setdefault("errors", {})
    data.setdefault("durations", {})
    data.setdefault("ran_at", {})
    return data


def save_results(profile: str, data: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    order = ["ingest.", "sessionizer.", "memory.", "store.", "e2e.inserts", "e2e.",
             "e2e_kafka.", "e2e_stack.", "api.", "api_sites.", "tracker."]

    def rank(f: dict[str, Any]) -> tuple[int, str]:
        stage = str(f.get("stage", ""))
        return (int(stage.split()[0]) if stage[:1].isdigit() else 9,
                str(next((i for i, p in enumerate(order) if f["id"].startswith(p)), 99)))

    data["figures"].sort(key=rank)
    results_path(profile).write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))


def num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    if unit in ("ratio",) or abs(value) < 10:
        text = f"{value:.3f}" if abs(value) < 10 else f"{value:,.1f}"
    elif abs(value) < 1000:
        text = f"{value:,.1f}"
    else:
        text = f"{value:,.0f}"
    return text


def spread(values: list[float], unit: str = "") -> str:
    if not values:
        return "–"
    return f"{num(min(values), unit)}–{num(max(values), unit)}"


def table(figures: list[Figure]) -> list[str]:
    lines = ["| stage | figure | median | spread (min–max) | N | baseline: median (spread) "
             "| ratio: median (spread) | target | result | command |",
             "| --- | --- | ---: | ---: | ---: | --- | ---: | --- | --- | --- |"]
    for f in figures:
        verdict = {True: "pass", False: "**MISS**", None: "–"}[f.passed]
        base = "–"
        if f.baseline_runs:
            base = (f"{f.baseline_name}: {num(f.baseline)} {f.unit} "
                    f"({spread(f.baseline_runs)})")
        ratio = "–"
        if f.ratios:
            ratio = f"{num(f.ratio, 'ratio')} ({spread(f.ratios, 'ratio')})"
        note = f"<br><sub>{f.note}</sub>" if f.note else ""
        lines.append(
            f"| {f.stage} | {f.name}{note} | {num(f.value)} {f.unit} | {spread(f.runs)} "
            f"| {len(f.runs)} | {base} | {ratio} | {f.target} | {verdict} | `{f.command}` |")
    return lines


def store_pairs(figures: list[Figure]) -> list[tuple[str, Figure, Figure]]:
    """The figures measured on both Stores in one run: (what, on chDB, on the server)."""
    by_id = {f.id: f for f in figures}
    pairs = []
    if "sessionizer.throughput" in by_id and "sessionizer.server.throughput" in by_id:
        pairs.append(("sessionizer, events/s (ratio to the raw loop)",
                      by_id["sessionizer.throughput"], by_id["sessionizer.server.throughput"]))
    for f in figures:
        rest = f.id.removeprefix("api.")
        server = by_id.get(f"api.server.{rest}")
        if f.id.startswith("api.") and not rest.startswith("server.") and server is not None:
            endpoint, size = rest.split(".")[:2]
            what = (f"API {endpoint}, {size} events, p95" if f.id.endswith(".p95") else
                    f"API {endpoint.replace('_first', '')}, {size} events, first request")
            pairs.append((what, f, server))
    return pairs


def store_table(figures: list[Figure]) -> list[str]:
    """chDB and the ClickHouse server side by side, for the figures measured on both."""
    pairs = store_pairs(figures)
    if not pairs:
        return []

    def shown(f: Figure) -> str:
        ratio = f" ({num(f.ratio, 'ratio')} x)" if f.ratio is not None and f.unit != "ms" else ""
        verdict = {True: " pass", False: " **MISS**", None: ""}[f.passed]
        return f"{num(f.value)} {f.unit}{ratio}{verdict}"

    lines = ["", "chDB and the ClickHouse server, side by side (same run):", "",
             "| figure | chDB | ClickHouse server | server / chDB | target |",
             "| --- | ---: | ---: | ---: | --- |"]
    for what, chdb, server in pairs:
        factor = (num(server.value / chdb.value, "ratio")
                  if server.value is not None and chdb.value else "–")
        lines.append(f"| {what} | {shown(chdb)} | {shown(server)} | {factor} | {chdb.target} |")
    return lines


# The end-to-end figures of the three topologies: (heading, id prefix).
TOPOLOGIES = (("clickport dev (4)", "e2e."), ("Kafka, 2 processes (4b)", "e2e_kafka."),
              ("separate processes (4c)", "e2e_stack."))


def e2e_table(figures: list[Figure]) -> list[str]:
    """The end to end on each topology, side by side: the rate held, the client's p99 at
    it, the stored fraction; each from its stage's latest run."""
    by_id = {f.id: f for f in figures}
    shown = [(name, prefix) for name, prefix in TOPOLOGIES
             if f"{prefix}sustained_rate" in by_id]
    if "e2e_stack.sustained_rate" not in by_id or len(shown) < 2:
        return []

    def p99(prefix: str) -> str:
        steps = by_id[f"{prefix}sustained_rate"].extra.get("steps") or [{}]
        value = steps[-1].get("p99_ms")  # the last step is the hold
        return "–" if value is None else f"{num(value)} ms"

    def value(figure_id: str) -> str:
        f = by_id.get(figure_id)
        if f is None:
            return "–"
        verdict = {True: " pass", False: " **MISS**", None: ""}[f.passed]
        return f"{num(f.value)} {f.unit}".rstrip() + verdict

    rows = [("rate held with bounded lag", lambda pre: value(f"{pre}sustained_rate")),
            ("client p99 at that rate", p99),
            ("stored fraction (target 1.000)", lambda pre: value(f"{pre}stored_fraction"))]
    lines = ["", "End to end on each topology, side by side (each from its stage's latest run):",
             "", "| figure | " + " | ".join(name for name, _ in shown) + " |",
             "| --- |" + " ---: |" * len(shown)]
    for what, cell in rows:
        lines.append(f"| {what} | " + " | ".join(cell(pre) for _, pre in shown) + " |")
    return lines


def section(profile: str, title: str) -> list[str]:
    data = load_results(profile)
    figures = [Figure.from_dict(f) for f in data["figures"]]
    out = [f"## {title}", ""]
    if not figures and not data["errors"]:
        return out + ["Not run yet.", ""]
    m = data.get("machine", {})
    when = ", ".join(f"{k} {v}" for k, v in data.get("ran_at", {}).items())
    durations = ", ".join(f"{k} {v:.0f} s" for k, v in data.get("durations", {}).items())
    load = ", ".join(f"{k} {v}" for k, v in data.get("load", {}).items())
    out += [f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, Python "
            f"{m.get('python', '?')}; load average at start {m.get('loadavg_at_start', '?')} "
            f"(other work shares this machine). Run at: {when}. Durations: {durations}.",
            "", f"Load average (1 min) before -> after each benchmark: {load}.", ""]
    out += table(figures)
    out += store_table(figures)
    out += e2e_table(figures)
    if data["errors"]:
        out += ["", "Benchmarks that failed in their last run:", ""]
        out += [f"- `{k}`: {v}" for k, v in data["errors"].items()]
    return out + [""]


def write_docs() -> pathlib.Path:
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by scripts/bench from bench/results/*.json and bench/ANALYSIS.md; "
        "edit those, not this file. -->",
        "",
        "How fast each stage is, against the limit of its own stack (issue #8). Each figure "
        "is the median of N runs with its spread (min–max); where a baseline exists it was "
        "measured in the same run, interleaved with the figure on the same core, and the "
        "ratio is the median of the per-round ratios. Methods: [bench/README.md]"
        "(../bench/README.md). Benchmarks never run in CI and no test asserts a timing.",
        "",
        "```",
        "scripts/bench            # everything, full sizes (about 25 minutes)",
        "scripts/bench --quick    # smoke mode: tiny sizes, under 2 minutes",
        "scripts/bench --only ingest,store   # a subset (ingest sessionizer memory store "
        "e2e e2e_kafka e2e_stack api tracker)",
        "scripts/bench --only api_sites     # opt-in: 100 M events across 50 sites (~40 min)",
        "```",
        "",
    ]
    lines += section("full", "Full run")
    if ANALYSIS.is_file():
        lines += [ANALYSIS.read_text().rstrip(), ""]
    lines += section("quick", "Latest quick (smoke) run")
    lines += ["Quick-mode figures use tiny sizes and one round; they show that every "
              "benchmark runs, not how fast anything is.", ""]
    DOC.write_text("\n".join(lines))
    return DOC
