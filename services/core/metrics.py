"""Prometheus metrics from plain counters. Each service keeps its counters in small stats
objects; a `StatsCollector` turns them into metric families when ``/metrics`` is scraped,
so the hot path only increments integers and nothing registers at import time (each app
has its own registry)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def counter(name: str, doc: str, value: float,
            labelled: Mapping[str, float] | None = None, label: str = "") -> Metric:
    family = CounterMetricFamily(name, doc, labels=[label] if labelled is not None else None)
    if labelled is None:
        family.add_metric([], value)
    else:
        for key, count in sorted(labelled.items()):
            family.add_metric([key], count)
    return family


def gauge(name: str, doc: str, value: float) -> Metric:
    family = GaugeMetricFamily(name, doc)
    family.add_metric([], value)
    return family


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
