"""OIDC bearer tokens (Amazon Cognito, Auth0, Keycloak …) checked against the provider's JWKS.

PyJWT does the cryptography and :class:`jwt.PyJWKClient` fetches and caches the key set (refetching when a
token names a key it has not seen, so key rotation needs no restart). The settings map claims to the
principal: tenant, roles (renamed through ``role_map``, unknown ones dropped) and compliance scopes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jwt

from answerdesk.config import JwtSettings
from answerdesk.errors import ProviderError, Unauthorized
from answerdesk.security.auth import ROLES
from answerdesk.security.keys import KEY_PREFIX
from answerdesk.types import Principal


class JwtAuthenticator:
    def __init__(self, settings: JwtSettings) -> None:
        self._settings = settings
        self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=max(settings.jwks_cache_s, 1))

    def claims(self, credential: str) -> bool:
        # A JWS compact token: three base64url parts; API keys have their own prefix.
        return not credential.startswith(KEY_PREFIX) and credential.count(".") == 2

    def authenticate(self, credential: str) -> Principal:
        s = self._settings
        try:
            signing_key = self._jwks.get_signing_key_from_jwt(credential)
        except jwt.PyJWKClientConnectionError as exc:
            raise ProviderError(f"cannot fetch the identity provider's keys from {s.jwks_url}", status=503) from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"token rejected: {exc}") from exc
        try:
            claims: dict[str, Any] = jwt.decode(
                credential,
                signing_key.key,
                algorithms=list(s.algorithms),
                audience=s.audience,
                issuer=s.issuer,
                leeway=s.leeway_s,
                options={"require": ["exp", s.subject_claim], "verify_aud": s.audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"token rejected: {exc}") from exc
        return principal_from_claims(claims, s)


def principal_from_claims(claims: dict[str, Any], settings: JwtSettings) -> Principal:
    """The principal a verified token's claims describe (pure: the mapping alone)."""
    tenant = claims.get(settings.tenant_claim)
    roles = {settings.role_map.get(r, r) for r in _strings(claims.get(settings.roles_claim))}
    scopes = _strings(claims.get(settings.scopes_claim)) if settings.scopes_claim else []
    return Principal(
        subject=f"jwt:{claims[settings.subject_claim]}",
        tenant=str(tenant) if tenant not in (None, "") else None,
        roles=frozenset(r for r in roles if r in ROLES),
        compliance_scopes=frozenset(scopes),
    )


def _strings(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").split() if part]
    if isinstance(value, Sequence):
        return [str(v) for v in value]
    return [str(value)]
