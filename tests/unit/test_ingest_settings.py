"""The ingest settings added for issue #10: CLICKPORT_GEOIP_DB and CLICKPORT_EXCLUDED_PATHS."""

from __future__ import annotations

import pathlib

import pytest

from services.core.settings import Settings, SettingsError


def test_no_geoip_database_and_no_excluded_paths_by_default() -> None:
    settings = Settings.from_env({})
    assert settings.geoip_db is None and settings.excluded_paths == ()


def test_geoip_db_names_an_existing_file(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "GeoLite2-Country.mmdb"
    db.write_bytes(b"x")
    assert Settings.from_env({"CLICKPORT_GEOIP_DB": str(db)}).geoip_db == db
    with pytest.raises(SettingsError, match="CLICKPORT_GEOIP_DB"):
        Settings.from_env({"CLICKPORT_GEOIP_DB": str(tmp_path / "missing.mmdb")})


def test_excluded_paths_are_a_comma_list_of_absolute_paths() -> None:
    settings = Settings.from_env({"CLICKPORT_EXCLUDED_PATHS": "/admin, /preview/ ,/tmp*"})
    assert settings.excluded_paths == ("/admin", "/preview/", "/tmp*")
    with pytest.raises(SettingsError, match="CLICKPORT_EXCLUDED_PATHS"):
        Settings.from_env({"CLICKPORT_EXCLUDED_PATHS": "/admin,preview"})
