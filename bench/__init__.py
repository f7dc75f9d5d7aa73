"""Clickport's benchmarks (issue #8): how fast each stage is against the limit of its own
stack. Run them with ``scripts/bench [--quick]``; bench/README.md explains each method and
docs/benchmarks.md holds the latest figures. Nothing here is imported by services/ or tests/,
and no test asserts a timing."""
