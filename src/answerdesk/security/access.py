"""The read rule every store enforces on every query, from the caller's identity.

A document with no tenant belongs to the shared knowledge base; a document with a tenant is readable only
by principals of that tenant. A document with a compliance scope is readable only by principals holding
that scope. Request parameters never widen this: filters on ``tenant`` or ``compliance_scope`` are refused.
"""

from __future__ import annotations

from answerdesk.types import Principal

#: Document fields that only the caller's identity decides, never a request filter.
IDENTITY_FIELDS = frozenset({"tenant", "compliance_scope"})


def can_read(principal: Principal, *, tenant: str | None, compliance_scope: str | None) -> bool:
    if tenant is not None and tenant != principal.tenant:
        return False
    return compliance_scope is None or compliance_scope in principal.compliance_scopes
