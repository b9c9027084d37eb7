"""API keys: shown once, stored only as a hash, scoped, revocable."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from answerdesk.errors import InputError, NotFound, Unauthorized
from answerdesk.security.keys import SqliteKeyStore, key_hash


def test_the_key_is_stored_only_as_its_hash(tmp_path: Path) -> None:
    store = SqliteKeyStore(tmp_path / "kb.db")
    key, secret = store.create("zendesk-eu", tenant="acme", roles=["agent", "reviewer"], compliance_scopes=["pci"])
    assert secret.startswith(key.id + "_") and len(secret) == len(key.id) + 44
    with sqlite3.connect(tmp_path / "kb.db") as conn:
        dump = "\n".join(conn.iterdump())
    assert secret not in dump and secret.split("_", 2)[2] not in dump and key_hash(secret) in dump
    principal = store.authenticate(secret)
    assert principal.tenant == "acme" and principal.roles == {"agent", "reviewer"}
    assert principal.compliance_scopes == {"pci"} and principal.subject == f"key:{key.id}"


def test_a_wrong_secret_with_a_real_id_is_refused(tmp_path: Path) -> None:
    store = SqliteKeyStore(tmp_path / "kb.db")
    key, secret = store.create("x", tenant=None, roles=["agent"])
    with pytest.raises(Unauthorized, match="unknown"):
        store.authenticate(key.id + "_" + "A" * 43)
    with pytest.raises(Unauthorized, match="malformed"):
        store.authenticate(secret + "x")


def test_revoke_and_list(tmp_path: Path) -> None:
    store = SqliteKeyStore(tmp_path / "kb.db")
    a, secret = store.create("a", tenant="acme", roles=["agent"])
    store.create("b", tenant="acme", roles=["ingest"])
    assert store.revoke(a.id).revoked_at is not None
    assert [k.name for k in store.list()] == ["b"] and len(store.list(include_revoked=True)) == 2
    with pytest.raises(Unauthorized, match="revoked"):
        store.authenticate(secret)
    with pytest.raises(NotFound):
        store.revoke("ak_deadbeef")


def test_roles_are_checked(tmp_path: Path) -> None:
    store = SqliteKeyStore(tmp_path / "kb.db")
    with pytest.raises(InputError, match="known roles: agent, reviewer, admin, ingest"):
        store.create("x", tenant=None, roles=["superuser"])
    with pytest.raises(InputError, match="at least one role"):
        store.create("x", tenant=None, roles=[])
