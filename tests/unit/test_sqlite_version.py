"""An SQLite too old for history's JSON reads is refused at start, with what to do."""

from pathlib import Path

import pytest

from autocloud.adapters import sqlite
from autocloud.domain.errors import ConfigurationError


def test_an_old_sqlite_is_refused_with_a_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite.sqlite3, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(sqlite.sqlite3, "sqlite_version", "3.31.1")
    with pytest.raises(ConfigurationError, match=r"SQLite is 3\.31\.1.*3\.38 or newer"):
        sqlite.create(f"sqlite:///{tmp_path / 'a.db'}")
    assert not (tmp_path / "a.db").exists()  # refused before creating anything


def test_this_sqlite_is_new_enough(tmp_path: Path) -> None:
    sqlite.create(f"sqlite:///{tmp_path / 'b.db'}").dispose()
