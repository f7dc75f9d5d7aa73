"""Benchmark 5b, opt-in (``scripts/bench --only api_sites``; ~40 minutes, not part of a
plain ``scripts/bench``): the query API on 100 M events across 50 sites in one chDB store,
2 M events per site, measured for one of them as benchmark 5 measures one site (quick: 1 M
across 5 sites). It shows what the other sites' data costs a site's requests: the day
partitions hold every site's rows, and the sort keys begin with the site."""

from __future__ import annotations

from bench.api_latency import figures, measure
from bench.common import Context, Figure


def run(ctx: Context) -> list[Figure]:
    events, sites = (100_000_000, 50) if ctx.profile.name == "full" else (1_000_000, 5)
    return figures([measure(ctx, events, sites)["chdb"]], ctx.command("api_sites"), "api_sites",
                   ctx.profile.api_sizes[-1])
