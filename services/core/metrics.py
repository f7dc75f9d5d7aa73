"""Prometheus metrics from plain counters. Each service keeps its counters in small stats
objects; a `StatsCollector` turns them into metric families when ``/metrics`` is scraped,
so the hot path only increments integers and nothing registers at import time (each app
has its own registry)."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def counter(name: str, doc: str, value: float,
            labelled: Mapping[str, float] | None = None, label: str = "") -> Metric:
    return _family(CounterMetricFamily, name, doc, value, labelled, label)


def gauge(name: str, doc: str, value: float,
          labelled: Mapping[str, float] | None = None, label: str = "") -> Metric:
    return _family(GaugeMetricFamily, name, doc, value, labelled, label)


def _family(kind: type[CounterMetricFamily] | type[GaugeMetricFamily], name: str, doc: str,
            value: float, labelled: Mapping[str, float] | None, label: str) -> Metric:
    """One unlabelled series of ``value``, or one per key of ``labelled`` under ``label``."""
    family = kind(name, doc, labels=[label] if labelled is not None else None)
    if labelled is None:
        family.add_metric([], value)
    else:
        for key, level in sorted(labelled.items()):
            family.add_metric([key], level)
    return family


class Histogram:
    """A histogram kept as plain counts, like the counters: `observe` adds to one bucket, and
    `histogram` renders the cumulative Prometheus form when ``/metrics`` is scraped."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(sorted(bounds))
        self.counts = [0] * (len(self.bounds) + 1)  # the last bucket is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1  # le: value <= bound
        self.total += value


def histogram(name: str, doc: str, h: Histogram) -> Metric:
    cumulative, buckets = 0, []
    for bound, count in zip([*map(repr, map(float, h.bounds)), "+Inf"], h.counts, strict=True):
        cumulative += count
        buckets.append((bound, float(cumulative)))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=h.total)


class StatsCollector(Collector):
    def __init__(self, *sources: Callable[[], Iterable[Metric]]) -> None:
        self._sources = sources

    def collect(self) -> Iterable[Metric]:
        for source in self._sources:
            yield from source()


def render(*sources: Callable[[], Iterable[Metric]]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(*sources))
    return generate_latest(registry)
