"""Which engine errors a writer retries (transient) and which it sets aside (permanent)."""

from __future__ import annotations

from services.core.store import StoreRejected, StoreUnavailable, store_error

READ_ONLY = ("Code: 1001. DB::Exception: std::__1::filesystem::filesystem_error: filesystem "
             "error: in create_directories: Read-only file system [\"/d/tmp_insert_1\"]. "
             "(STD_EXCEPTION)")


def test_a_file_system_error_is_transient_other_std_exceptions_are_not() -> None:
    assert isinstance(store_error(READ_ONLY), StoreUnavailable)
    assert isinstance(store_error("Code: 1001. DB::Exception: Permission denied"),
                      StoreUnavailable)
    assert isinstance(store_error("Code: 1001. DB::Exception: std::out_of_range: vector"),
                      StoreRejected)
    assert isinstance(store_error("Code: 243. Cannot reserve 1.00 MiB"), StoreUnavailable)
    assert isinstance(store_error("Code: 16. No such column x"), StoreRejected)
