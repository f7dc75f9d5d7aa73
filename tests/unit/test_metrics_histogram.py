"""`Histogram`: plain bucket counts rendered as a cumulative Prometheus histogram."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from services.core.metrics import Histogram, StatsCollector, histogram


def rendered(h: Histogram) -> list[str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(lambda: [histogram("x_seconds", "doc", h)]))
    return generate_latest(registry).decode().splitlines()


def test_a_value_on_a_bound_counts_in_that_bucket_and_the_buckets_are_cumulative() -> None:
    h = Histogram([1, 0.5, 2])  # any order
    for value in (0.1, 0.5, 0.7, 1.0, 3.0, 50.0):
        h.observe(value)
    lines = rendered(h)
    assert 'x_seconds_bucket{le="0.5"} 2.0' in lines
    assert 'x_seconds_bucket{le="1.0"} 4.0' in lines
    assert 'x_seconds_bucket{le="2.0"} 4.0' in lines
    assert 'x_seconds_bucket{le="+Inf"} 6.0' in lines
    assert "x_seconds_count 6.0" in lines
    assert "x_seconds_sum 55.3" in lines


def test_an_empty_histogram_renders_zero_counts() -> None:
    lines = rendered(Histogram([1.0]))
    assert 'x_seconds_bucket{le="1.0"} 0.0' in lines and "x_seconds_count 0.0" in lines
