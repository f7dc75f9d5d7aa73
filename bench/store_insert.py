"""Benchmark 3a, store: rows/s of ``ChdbStore.insert`` (``events`` rows) against chDB's
fastest bulk path for the same rows, at two batch sizes: the sessionizer's default cap
(20,000 events, what it writes above 20 k events/s) and 5,000 (about what its 1 s timer
hands over at the 6-7 k events/s this machine sustains end to end).

One child process on core 1 holds a fresh chDB store (the product's migrations) and, per
variant, a table made with ``CREATE TABLE x AS events`` (same engine, sort key, codecs and
dedup window). The batches are what the sessionizer hands the Store: an ``EventBatch`` of
realistic events, turned into columns inside ``insert`` (so on the clock). Every insert
carries a per-batch ``insert_deduplication_token`` as the sessionizer's do. Rounds are
interleaved: ChdbStore.insert, then each bulk path, each into its own table, truncated
after its round. Every path leaves a column that is empty in every row of a batch to the
table's default, as ``ChdbStore.insert`` does (in these batches: the UTM term and content,
country, custom name and goals). Bulk paths (the same rows, prepared before the clock
starts):

- ``arrow_python``: ``INSERT ... SELECT * FROM Python(table)`` over a pyarrow Table;
- ``arrow_file``: ``INSERT ... SELECT * FROM file('batch.arrow', Arrow)`` (Arrow IPC);
- ``parquet_file``: the same from Parquet.

The baseline of a round is the fastest of those. ``arrow_from_rows`` (information) times
building the pyarrow Table from the row dicts plus the ``Python()`` insert: what a
columnar ``ChdbStore.insert`` could reach.

The child runs under the sessionizer's garbage-collector setting (`fewer_gc_passes`), as
the Store's inserts do in the product: they run in the sessionizer's process, which raises
CPython's first GC threshold while it consumes. ``store_default_gc`` (information) is the
same insert at CPython's default threshold. There, the conversion's allocations trigger
young collections, and full ones walk every tracked object of this child, including its
200,000 row dicts kept for the bulk paths: a cost of the benchmark's own heap more than of
the product's.
"""

from __future__ import annotations

import argparse
import gc
import pathlib
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import PYTHON, Context, Figure, paired_ratios, run_json, say
from services.core.settings import Settings
from services.sessionizer.worker import fewer_gc_passes

FULL_BATCH = Settings().batch_max_events  # the sessionizer's batches above 20 k events/s
TIMER_BATCH = 5_000  # its batches at the end-to-end rate this machine sustains (1 s timer)
BULK = ("arrow_python", "arrow_file", "parquet_file")
LIST_COLUMNS = ("goals", "meta_keys", "meta_values")


def arrow_table(rows: list[dict[str, Any]]) -> Any:
    import pyarrow as pa

    types = {"timestamp": pa.timestamp("ms", tz="UTC"), "visitor_id": pa.uint64(),
             "scroll_depth": pa.uint8(), "visible_ms": pa.uint32(),
             "first_click_at": pa.timestamp("ms", tz="UTC"), "is_first_click": pa.uint8(),
             **{c: pa.list_(pa.string()) for c in LIST_COLUMNS}}
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    # As ChdbStore.insert does, a column empty in every row is left to the table's default
    # (none of the event columns that can be has a DEFAULT expression that differs).
    return pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in columns.items()
                     if any(v)})


def child(rows_total: int, rounds: int, directory: pathlib.Path, batch_size: int
          ) -> dict[str, Any]:
    import pyarrow.feather as feather
    import pyarrow.parquet as parquet

    from bench.workload import events
    from services.adapters.chdb_store import ChdbStore
    from services.core.rows import EventBatch, event_row
    from services.core.session import NOT_A_CLICK

    store = ChdbStore(directory / "chdb")
    store.migrate()
    default_gc = gc.get_threshold()
    variants = ("store", "store_default_gc", *BULK, "arrow_from_rows")
    for name in variants:
        store._run(f"CREATE TABLE IF NOT EXISTS events_{name} AS events")
    generated = list(events(rows_total))
    # every click marked as its session's first to its domain, as most are
    firsts = [(e.ts, 1) if e.kind == "click" else NOT_A_CLICK for e in generated]
    rows = [event_row(e, (), first) for e, first in zip(generated, firsts, strict=True)]
    batches = [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]
    event_batches = []
    for i in range(0, len(generated), batch_size):
        batch = EventBatch()
        for event, first in zip(generated[i:i + batch_size], firsts[i:i + batch_size],
                                strict=True):
            batch.add(event, [], first)
        event_batches.append(batch)
    tables = [arrow_table(b) for b in batches]
    for i, table in enumerate(tables):
        feather.write_feather(table, directory / f"b{i}.arrow", compression="uncompressed")
        parquet.write_table(table, directory / f"b{i}.parquet", compression="none")
    print(f"store child: {len(rows)} rows in {len(batches)} batches ready", file=sys.stderr,
          flush=True)

    def token(name: str, i: int, round_no: int) -> str:
        return f"bench-{name}-{round_no}-{i}"

    def run_store(r: int) -> None:
        for i, batch in enumerate(event_batches):
            store.insert("events_store", batch, dedup_token=token("store", i, r))

    def run_store_default_gc(r: int) -> None:
        raised = gc.get_threshold()
        gc.set_threshold(*default_gc)
        try:
            for i, batch in enumerate(event_batches):
                store.insert("events_store_default_gc", batch, dedup_token=token("sd", i, r))
        finally:
            gc.set_threshold(*raised)

    def names(tbl: Any) -> str:
        return ", ".join(tbl.column_names)

    def run_python(r: int) -> None:
        for i, tbl in enumerate(tables):
            store._run(f"INSERT INTO events_arrow_python ({names(tbl)}) SETTINGS "
                       f"insert_deduplication_token = '{token('py', i, r)}' "
                       f"SELECT * FROM Python(tbl)")

    def run_file(fmt: str, suffix: str, table: str) -> Callable[[int], None]:
        def go(r: int) -> None:
            for i, tbl in enumerate(tables):
                store._run(f"INSERT INTO {table} ({names(tbl)}) SETTINGS "
                           f"insert_deduplication_token = '{token(suffix, i, r)}' SELECT * "
                           f"FROM file('{directory / f'b{i}.{suffix}'}', {fmt})")
        return go

    def run_from_rows(r: int) -> None:
        for i, batch in enumerate(batches):
            tbl = arrow_table(batch)
            store._run(f"INSERT INTO events_arrow_from_rows ({names(tbl)}) SETTINGS "
                       f"insert_deduplication_token = '{token('fr', i, r)}' "
                       f"SELECT * FROM Python(tbl)")

    runners = {"store": run_store, "store_default_gc": run_store_default_gc,
               "arrow_python": run_python,
               "arrow_file": run_file("Arrow", "arrow", "events_arrow_file"),
               "parquet_file": run_file("Parquet", "parquet", "events_parquet_file"),
               "arrow_from_rows": run_from_rows}
    out: dict[str, list[float]] = {name: [] for name in variants}
    with fewer_gc_passes():
        for r in range(rounds):
            for name in variants:
                started = time.perf_counter()
                runners[name](r)
                seconds = time.perf_counter() - started
                count = int(store.query(f"SELECT count() AS n FROM events_{name}")[0]["n"])
                if count != len(rows):
                    raise RuntimeError(f"{name}: {count} rows stored, {len(rows)} inserted")
                out[name].append(len(rows) / seconds)
                store._run(f"TRUNCATE TABLE events_{name}")
                print(f"store child round {r + 1}: {name} {len(rows) / seconds:,.0f} rows/s",
                      file=sys.stderr, flush=True)
    store.close()
    return {"rows": len(rows), "rates": out}


def measure(ctx: Context, batch_size: int) -> dict[str, list[float]]:
    p = ctx.profile
    say(f"store: {p.store_rows:,} event rows, batches of {batch_size:,}, {p.rounds + 1} rounds "
        f"(first is warm-up), child on core 1")
    result = run_json([PYTHON, "-m", "bench.store_insert", "--rows", str(p.store_rows),
                       "--rounds", str(p.rounds + 1), "--batch", str(batch_size),
                       "--dir", str(ctx.scratch(f"store-{batch_size}"))])
    return {k: v[1:] for k, v in result["rates"].items()}  # round 1 warms caches


def insert_figure(ctx: Context, rates: dict[str, list[float]], batch_size: int, figure_id: str,
                  when: str) -> tuple[Figure, list[float]]:
    base = [max(rates[b][i] for b in BULK) for i in range(len(rates["store"]))]
    fastest = max(BULK, key=lambda b: sorted(rates[b])[len(rates[b]) // 2])
    bulk_note = "; ".join(f"{b} median {sorted(rates[b])[len(rates[b]) // 2]:,.0f}"
                          for b in BULK)
    return Figure(
        id=figure_id, stage="3 store",
        name=f"ChdbStore.insert rows/s (events, column batches of {batch_size:,}: {when})",
        unit="rows/s", runs=rates["store"], baseline_name="fastest chDB bulk path",
        baseline_runs=base, ratios=paired_ratios(rates["store"], base),
        target=">= 0.7 x bulk", judge="ratio >= 0.7", command=ctx.command("store"),
        note=f"bulk paths (rows/s): {bulk_note}; fastest: {fastest}",
        extra={"rates": rates}), base


def information(ctx: Context, rates: dict[str, list[float]], base: list[float], variant: str,
                figure_id: str, name: str, target: str) -> Figure:
    """A figure judged against nothing: another variant of the 20,000-row rounds."""
    return Figure(id=figure_id, stage="3 store",
                  name=f"(information) {name}, batches of {FULL_BATCH:,}", unit="rows/s",
                  runs=rates[variant], baseline_name="fastest chDB bulk path",
                  baseline_runs=base, ratios=paired_ratios(rates[variant], base),
                  target=target, command=ctx.command("store"))


def run(ctx: Context) -> list[Figure]:
    full = measure(ctx, FULL_BATCH)
    timer = measure(ctx, TIMER_BATCH)
    full_figure, base = insert_figure(ctx, full, FULL_BATCH, "store.insert",
                                      "the sessionizer's default cap")
    timer_figure, _ = insert_figure(ctx, timer, TIMER_BATCH, "store.insert_timer_batch",
                                    "what the 1 s timer hands over at 5 k events/s")
    return [
        full_figure,
        timer_figure,
        information(ctx, full, base, "arrow_from_rows", "store.arrow_from_rows",
                    "row dicts -> pyarrow Table -> INSERT SELECT FROM Python()",
                    "(what a columnar insert would reach)"),
        information(ctx, full, base, "store_default_gc", "store.insert_default_gc",
                    "ChdbStore.insert at CPython's default GC threshold",
                    "(the same insert outside the sessionizer's GC setting)"),
    ]


if __name__ == "__main__":
    import orjson

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--batch", type=int, default=FULL_BATCH)
    parser.add_argument("--dir", type=pathlib.Path, required=True)
    args = parser.parse_args()
    print(orjson.dumps(child(args.rows, args.rounds, args.dir, args.batch)).decode())
