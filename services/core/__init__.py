"""Shared, mostly I/O-free building blocks: settings, event types, URL rules, session rules,
and the Transport and Store protocols. Services import core; core imports no service."""
