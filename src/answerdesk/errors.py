"""The one exception tree of answerdesk, split by who has to act.

::

    AnswerdeskError
    ├── ConfigError          operator: a setting, a config file or a missing extra
    ├── InputError           caller: bad question, filter, path or file (4xx on the wire)
    │   └── IngestError      one source could not be read or parsed
    ├── NotFound             caller: the thing asked for does not exist
    ├── Unauthorized         caller: no valid identity
    ├── Forbidden            caller: identity lacks the right
    ├── StoreError           operator: the store is unreadable or its schema is behind
    ├── ProviderError        upstream: an embedder or model failed (status, retry_after)
    ├── RateLimited          caller: over a request or token rate (retry_after; 429 on the wire)
    │   └── BudgetExceeded   caller: a spend budget of the tenant or a cost tag is used up
    ├── GuardrailBlocked     policy: a guard blocked the request (its findings say which rule)
    └── GuardError           operator: a guard itself failed (the caller fails closed unless told otherwise)

Third-party exceptions are wrapped at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations


class AnswerdeskError(Exception):
    """Base of every error answerdesk raises on purpose."""


class ConfigError(AnswerdeskError):
    """A setting is wrong or something the configuration asks for is not installed."""


class InputError(AnswerdeskError):
    """The caller sent something answerdesk cannot act on; the message says what and how to fix it."""


class IngestError(InputError):
    """A source could not be ingested.

    ``source`` names the file (or file and row) so that an ingest summary can list it.
    """

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.reason = message


class NotFound(AnswerdeskError):
    """The document, chunk or resource asked for does not exist (for this caller)."""


class Unauthorized(AnswerdeskError):
    """No valid identity came with the request."""


class Forbidden(AnswerdeskError):
    """The identity is valid but lacks the role or scope the action needs."""


class StoreError(AnswerdeskError):
    """The store cannot be opened, migrated or written."""


class ProviderError(AnswerdeskError):
    """An upstream embedder or model failed.

    ``status`` is the upstream status code when there is one; ``retry_after`` is in seconds.
    """

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class RateLimited(AnswerdeskError):
    """The caller is over a rate limit. ``limit`` names it (e.g. ``key:requests_per_minute``); ``retry_after``
    is in seconds until a request would be admitted again."""

    def __init__(self, message: str, *, limit: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.retry_after = retry_after


class BudgetExceeded(RateLimited):
    """A spend budget (per tenant or per cost tag, daily or monthly) is used up until its window resets."""


class GuardrailBlocked(AnswerdeskError):
    """A guard's policy blocked the request. ``findings`` says which guard and rule, never the matched text."""

    def __init__(self, message: str, *, findings: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.findings = findings


class GuardError(AnswerdeskError):
    """A guard could not run (a detector crashed, a regex timed out). Callers fail closed by default."""

    def __init__(self, guard: str, message: str) -> None:
        super().__init__(f"guard '{guard}' failed: {message}")
        self.guard = guard
