"""The guardrail policy file: which guards run, with what rules and actions, per tenant.

YAML or JSON (JSON is YAML), validated with pydantic; an error names the file and the field, e.g.
``guard-policy.yaml: 'wordFilters.1.action': Input should be 'BLOCK' or 'CHALLENGE' (got 'DENY')``.
A section that is absent turns its guard off. ``tenants.<name>`` replaces whole sections for one tenant.
``failMode.<guard>`` says what happens when a guard itself fails: ``closed`` (the default: the request is
blocked, or a context chunk dropped) or ``open`` (the guard is skipped, and that is recorded).

:class:`PolicySource` reloads the file when its modification time or size changes; a new file that does not
validate leaves the policy in force unchanged and keeps the error for callers to report.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from answerdesk.errors import ConfigError
from answerdesk.guard.grounding import ContextualGroundingPolicy
from answerdesk.guard.injection import PromptAttackPolicy
from answerdesk.guard.pii import SensitiveInformationPolicy
from answerdesk.guard.topics import DeniedTopic
from answerdesk.guard.words import WordFilter

log = logging.getLogger(__name__)

#: Guards a policy can configure, in the order the input stage runs them.
GUARD_NAMES = ("pii", "words", "topics", "injection", "grounding")
FailMode = Literal["closed", "open"]
DEFAULT_BLOCKED_MESSAGE = "I can't help with that request."
#: The bundled policy (the Parcelwise demo's), used when ``guard.policy`` is not set.
BUNDLED_POLICY = "default_policy.yaml"


class _Sections(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    sensitive_information_policy: SensitiveInformationPolicy | None = Field(
        default=None, alias="sensitiveInformationPolicy"
    )
    word_filters: tuple[WordFilter, ...] = Field(default=(), alias="wordFilters")
    contextual_grounding: ContextualGroundingPolicy | None = Field(default=None, alias="contextualGrounding")
    denied_topics: tuple[DeniedTopic, ...] = Field(default=(), alias="deniedTopics")
    prompt_attack: PromptAttackPolicy | None = Field(default=None, alias="promptAttack")
    fail_mode: dict[str, FailMode] = Field(default_factory=dict, alias="failMode")
    #: The answer text when a guard blocks a request.
    blocked_message: str = Field(default=DEFAULT_BLOCKED_MESSAGE, min_length=1, alias="blockedMessage")

    @field_validator("fail_mode")
    @classmethod
    def _known_guards(cls, value: dict[str, FailMode]) -> dict[str, FailMode]:
        unknown = sorted(set(value) - set(GUARD_NAMES))
        if unknown:
            raise ValueError(f"unknown guard {', '.join(unknown)}; known guards: {', '.join(GUARD_NAMES)}")
        return value


class GuardPolicy(_Sections):
    """The policy one request runs under: every section resolved, no tenant overrides left."""

    version: str = Field(min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    def fails_open(self, guard: str) -> bool:
        return self.fail_mode.get(guard, "closed") == "open"


class PolicyFile(GuardPolicy):
    """The whole file: the default policy plus ``tenants`` that replace sections of it."""

    tenants: dict[str, _Sections] = Field(default_factory=dict)

    def for_tenant(self, tenant: str | None) -> GuardPolicy:
        """The policy for ``tenant``: the default sections, with the tenant's sections in their place."""
        # Sections are validated already; constructing skips running the regex probes again.
        fields = {name: getattr(self, name) for name in GuardPolicy.model_fields}
        base = GuardPolicy.model_construct(_fields_set=self.model_fields_set - {"tenants"}, **fields)
        override = self.tenants.get(tenant) if tenant is not None else None
        if override is None:
            return base
        return base.model_copy(update={name: getattr(override, name) for name in override.model_fields_set})


def parse_policy(data: Any, *, where: str) -> PolicyFile:
    """Validate loaded YAML/JSON; raises :class:`ConfigError` naming ``where`` and each bad field."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping with 'version' and guard sections, got {type(data).__name__}")
    try:
        return PolicyFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: " + "; ".join(_problems(exc))) from exc


def _problems(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            out.append(f"unknown key '{key}'")
        elif err["type"] == "missing":
            out.append(f"'{key}' is required")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            out.append(f"'{key}': {msg} (got {_short(err.get('input'))})")
    return out


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def load_policy(path: Path) -> PolicyFile:
    """Read and validate the policy file at ``path``. Raises :class:`ConfigError` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read guard policy: {exc}") from exc
    return parse_policy(_yaml(text, where=str(path)), where=str(path))


def bundled_policy() -> PolicyFile:
    text = resources.files("answerdesk.guard").joinpath(BUNDLED_POLICY).read_text(encoding="utf-8")
    return parse_policy(_yaml(text, where=BUNDLED_POLICY), where=BUNDLED_POLICY)


def _yaml(text: str, *, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML or JSON: {exc}") from exc


class PolicySource:
    """The policy in force, reloaded when its file changes. ``path`` None serves the bundled policy.

    The first load raises :class:`ConfigError`; a failed reload keeps the previous policy, logs a warning
    and sets :attr:`error` until a good file is loaded.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._error: str | None = None
        self._stamp = self._file_stamp()
        self._policy = load_policy(path) if path is not None else bundled_policy()
        self._generation = 0

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def error(self) -> str | None:
        """Why the last reload failed, while the previous policy stays in force; ``None`` when it did not."""
        return self._error

    @property
    def generation(self) -> int:
        """Counts successful reloads, so callers can rebuild what they built from the policy."""
        return self._generation

    def current(self) -> PolicyFile:
        """The policy in force, after reloading the file if it changed (a ``stat`` per call)."""
        if self._path is None:
            return self._policy
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return self._policy
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._policy = load_policy(self._path)
                    self._generation += 1
                    self._error = None
                    log.info("guard policy %s reloaded: version %s", self._path, self._policy.version)
                except ConfigError as exc:
                    self._error = str(exc)
                    log.warning("guard policy reload failed, keeping version %s: %s", self._policy.version, exc)
        return self._policy

    def _file_stamp(self) -> tuple[int, int] | None:
        if self._path is None:
            return None
        try:
            st = self._path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)
