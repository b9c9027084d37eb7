from __future__ import annotations

from pathlib import Path

import pytest

from answerdesk.store.sqlite import SqliteIndex
from tests.contract.search_index_contract import SearchIndexContract


class TestSqliteIndex(SearchIndexContract):
    @pytest.fixture
    def index(self, tmp_path: Path) -> SqliteIndex:
        store = SqliteIndex(tmp_path / "kb.db")
        yield store
        assert store.check() == []
        store.close()
