"""Who is calling: one FastAPI dependency per access rule, each resolving the request's :class:`Principal`.

Every route declares exactly one :class:`Rule` (the role × endpoint test walks the routes to prove it). The
credential is ``Authorization: Bearer <key or token>`` or ``X-API-Key: <key>``. ``admin`` passes every rule.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

from fastapi import Request

from answerdesk.config import AuthSettings
from answerdesk.errors import ConfigError, Forbidden, Unauthorized
from answerdesk.security.auth import Authenticator, check_roles
from answerdesk.types import Principal

log = logging.getLogger("answerdesk.serve")
ANONYMOUS = Principal(subject="anonymous")


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AuthGate:
    """Resolves credentials through the authenticator; in ``auth.mode: local`` a loopback caller without
    credentials is the configured local principal."""

    def __init__(self, settings: AuthSettings, authenticator: Authenticator | None) -> None:
        self.settings = settings
        self._authenticator = authenticator
        self._local: Principal | None = None
        if settings.mode == "local":
            try:
                roles = check_roles(settings.local_roles)
            except ValueError as exc:
                raise ConfigError(f"auth.local_roles: {exc}") from exc
            self._local = Principal(subject="local", tenant=settings.local_tenant, roles=roles)
            log.warning(
                "auth.mode is local: loopback callers without credentials act as tenant %s with roles %s",
                settings.local_tenant or "(shared)",
                ", ".join(sorted(roles)),
            )

    def identify(self, request: Request) -> Principal:
        credential = _credential(request)
        if credential:
            if self._authenticator is None or not self._authenticator.claims(credential):
                raise Unauthorized("the credential is neither an answerdesk API key nor a token this service accepts")
            return self._authenticator.authenticate(credential)
        if self._local is not None:
            client = request.client.host if request.client else None
            if not is_loopback(client):
                raise Unauthorized("auth.mode local serves loopback clients only; send an API key")
            return self._local
        raise Unauthorized("send an API key or token: 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")


def _credential(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <API key or token>'")
        return value.strip()
    key = request.headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


@dataclass(frozen=True, slots=True)
class Rule:
    """An access rule as a dependency: it returns the principal, or raises 401/403.

    ``roles`` None is public (no credential needed); ``public_when`` names an ``auth`` setting that, when
    true, makes the rule public (``public_metrics``)."""

    name: str
    roles: frozenset[str] | None
    public_when: str | None = None

    def __call__(self, request: Request) -> Principal:
        gate: AuthGate = request.app.state.auth
        if self.roles is None or (self.public_when and getattr(gate.settings, self.public_when)):
            return ANONYMOUS
        principal = gate.identify(request)
        if "admin" not in principal.roles and not principal.roles & self.roles:
            needed = ", ".join(sorted(self.roles | {"admin"}))
            has = ", ".join(sorted(principal.roles)) or "none"
            raise Forbidden(f"this endpoint needs one of the roles {needed}; the caller has {has}")
        request.state.principal = principal
        return principal


PUBLIC = Rule("public", None)
#: Asking, searching and rating answers.
ASK = Rule("ask", frozenset({"agent", "reviewer"}))
#: Uploading, listing and deleting documents, and reading ingestion jobs.
DOCUMENTS = Rule("documents", frozenset({"ingest"}))
METRICS = Rule("metrics", frozenset(), public_when="public_metrics")
RULES = (PUBLIC, ASK, DOCUMENTS, METRICS)
