"""Reliability and security tests (issue #9, docs/reliability.md). A package so the modules
share `support`; each module opens at most one chDB store at a time (chDB serves one data path
per process) and closes it before the next module starts."""
