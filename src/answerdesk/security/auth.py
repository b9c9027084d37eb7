"""Turning a credential into a :class:`Principal`: the roles answerdesk knows and the authenticator chain.

A credential is an API key (``ak_...``, see ``keys.py``) or an OIDC bearer token (a JWT, see ``jwt.py``). The
chain tries the authenticator that claims the credential's shape; a credential no configured authenticator
accepts is :class:`Unauthorized`, never an anonymous principal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from answerdesk.errors import Unauthorized
from answerdesk.types import Principal

#: ``agent`` asks and rates; ``reviewer`` also works the review queue; ``ingest`` manages documents;
#: ``admin`` may do everything.
ROLES = ("agent", "reviewer", "admin", "ingest")


def check_roles(roles: Sequence[str]) -> frozenset[str]:
    """``roles`` as a set; raises :class:`ValueError` naming an unknown role and the known ones."""
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(unknown)}; known roles: {', '.join(ROLES)}")
    return frozenset(roles)


class Authenticator(Protocol):
    def claims(self, credential: str) -> bool:
        """Whether ``credential`` has the shape this authenticator reads (so it alone decides)."""
        ...

    def authenticate(self, credential: str) -> Principal:
        """The principal behind ``credential``; raises :class:`Unauthorized` for a bad, expired or revoked one
        and :class:`ProviderError` when the identity provider cannot be reached. May block (I/O)."""
        ...


class ChainAuthenticator:
    """The first authenticator that claims a credential decides it."""

    def __init__(self, authenticators: Sequence[Authenticator]) -> None:
        self._authenticators = tuple(authenticators)

    def claims(self, credential: str) -> bool:
        return any(a.claims(credential) for a in self._authenticators)

    def authenticate(self, credential: str) -> Principal:
        for authenticator in self._authenticators:
            if authenticator.claims(credential):
                return authenticator.authenticate(credential)
        raise Unauthorized("the credential is neither an answerdesk API key nor a token this service accepts")
