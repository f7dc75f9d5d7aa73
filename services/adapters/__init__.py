"""Implementations of the core seams (Transport, Store). Adapters import core only; the
services receive them from a composition root and never import them."""
