"""API keys: created once and shown once, stored as a SHA-256 hash, scoped to a tenant and roles.

A key is ``ak_<8 hex>_<43 url-safe characters>``: the first part is its id (shown in listings, used to
revoke and to find the row), the rest 256 random bits. Keys are hashed with plain SHA-256, not bcrypt or
argon2: those slow hashes protect low-entropy passwords against guessing, and a 256-bit random secret cannot
be guessed whatever the hash, while a 100 ms hash on every request would be most of the service's latency
budget. The hash is compared in constant time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from answerdesk.errors import InputError, NotFound, Unauthorized
from answerdesk.security.auth import check_roles
from answerdesk.store import migrate
from answerdesk.types import Principal

KEY_PREFIX = "ak_"
_KEY = re.compile(r"^(ak_[0-9a-f]{8})_[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key, without its secret."""

    id: str
    name: str
    tenant: str | None
    roles: tuple[str, ...]
    compliance_scopes: tuple[str, ...]
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def principal(self) -> Principal:
        return Principal(
            subject=f"key:{self.id}",
            tenant=self.tenant,
            roles=frozenset(self.roles),
            compliance_scopes=frozenset(self.compliance_scopes),
        )


def new_secret() -> tuple[str, str]:
    """A fresh ``(key id, whole key)``."""
    key_id = KEY_PREFIX + secrets.token_hex(4)
    return key_id, f"{key_id}_{secrets.token_urlsafe(32)}"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def open_state_db(path: Path) -> sqlite3.Connection:
    """A connection to the store's SQLite file, migrated to head (the service state lives beside the index)."""
    return migrate.open_sqlite(path)


class SqliteKeyStore:
    """API keys in the store's SQLite file; also the :class:`Authenticator` for them."""

    def __init__(self, path: Path) -> None:
        self._conn = open_state_db(path)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def create(
        self,
        name: str,
        *,
        tenant: str | None,
        roles: Sequence[str],
        compliance_scopes: Sequence[str] = (),
    ) -> tuple[ApiKey, str]:
        """Store a new key; returns it and the whole key, which is never available again.
        Raises :class:`InputError` for an empty name, no roles or an unknown role."""
        if not name.strip():
            raise InputError("a key needs a name (who or what uses it)")
        if not roles:
            raise InputError("a key needs at least one role")
        try:
            checked = check_roles(roles)
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        key_id, secret = new_secret()
        key = ApiKey(
            id=key_id,
            name=name.strip(),
            tenant=tenant or None,
            roles=tuple(sorted(checked)),
            compliance_scopes=tuple(sorted(set(compliance_scopes))),
            created_at=_now(),
        )
        with self._lock:
            self._conn.execute(
                "INSERT INTO api_keys (id, sha256, name, tenant, roles, compliance_scopes, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key.id, key_hash(secret), key.name, key.tenant, json.dumps(key.roles),
                 json.dumps(key.compliance_scopes), key.created_at),
            )  # fmt: skip
        return key, secret

    def list(self, *, include_revoked: bool = False) -> list[ApiKey]:
        sql = "SELECT id, name, tenant, roles, compliance_scopes, created_at, revoked_at FROM api_keys"
        if not include_revoked:
            sql += " WHERE revoked_at IS NULL"
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY created_at, id").fetchall()
        return [_key(row) for row in rows]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke by id (``ak_xxxxxxxx``; a whole key is accepted too). Raises :class:`NotFound`."""
        match = _KEY.match(key_id)
        key_id = match.group(1) if match else key_id
        with self._lock:
            self._conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (_now(), key_id)
            )
            row = self._conn.execute(
                "SELECT id, name, tenant, roles, compliance_scopes, created_at, revoked_at FROM api_keys WHERE id = ?",
                (key_id,),
            ).fetchone()
        if row is None:
            raise NotFound(f"no API key with id '{key_id}'")
        return _key(row)

    # -- Authenticator ---------------------------------------------------------------------------------------

    def claims(self, credential: str) -> bool:
        return credential.startswith(KEY_PREFIX)

    def authenticate(self, credential: str) -> Principal:
        match = _KEY.match(credential)
        if match is None:
            raise Unauthorized("malformed API key")
        with self._lock:
            row = self._conn.execute(
                "SELECT id, name, tenant, roles, compliance_scopes, created_at, revoked_at, sha256 "
                "FROM api_keys WHERE id = ?",
                (match.group(1),),
            ).fetchone()
        # Compare against a dummy hash when the id is unknown, so timing does not tell ids apart.
        stored = row[7] if row else "0" * 64
        if not hmac.compare_digest(stored, key_hash(credential)) or row is None:
            raise Unauthorized("unknown API key")
        key = _key(row[:7])
        if not key.active:
            raise Unauthorized(f"API key {key.id} was revoked at {key.revoked_at}")
        return key.principal()


def _key(row: Sequence[object]) -> ApiKey:
    return ApiKey(
        id=str(row[0]),
        name=str(row[1]),
        tenant=None if row[2] is None else str(row[2]),
        roles=tuple(json.loads(str(row[3]))),
        compliance_scopes=tuple(json.loads(str(row[4]))),
        created_at=str(row[5]),
        revoked_at=None if row[6] is None else str(row[6]),
    )


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
