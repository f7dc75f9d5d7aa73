"""Query API tests. A package on purpose: its package-scoped fixture (conftest.py) runs one
embedded app for all of them and closes it before the next directory's tests, because chDB
serves one data path per process."""
