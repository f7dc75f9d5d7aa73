"""The error every ``clickport`` command raises for its user: `services.cli.main` prints it
and exits 1. In a module of its own so that command modules can import it without importing
``services.cli``, which runs a second time (as itself, beside ``__main__``) under
``python -m services.cli``, with a class of its own that ``main`` would not catch."""

from __future__ import annotations


class CliError(RuntimeError):
    pass
