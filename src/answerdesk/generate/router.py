"""Rule-based model routing: which configured route (a named fallback chain) answers a question.

The rules are data (``generation.router`` in the settings), tried in order; the first whose every condition
holds wins, and no match means ``generation.default_route``. Conditions look at the question's length in
tokens, its complexity cues (configured words such as "why" or "compare", two or more questions, numbers),
the caller's intent and the tenant's plan. The :class:`RouteDecision` says which rule matched and on what,
so callers can record it with the answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from answerdesk.config import GenerationSettings, RouteRule
from answerdesk.errors import ConfigError
from answerdesk.generate.pricing import cost_usd, estimate_tokens
from answerdesk.types import Usage

#: Cues found by shape rather than by word.
MULTI_QUESTION = "multi_question"
NUMBERS = "numbers"
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True, slots=True)
class RouteDecision:
    route: str
    #: Which rule matched and on what, e.g. ``rule 'complex': cues [why, numbers] >= 2``.
    reason: str


@dataclass(frozen=True, slots=True)
class RouteQuery:
    """A question with what the router may know about its asker."""

    question: str
    intent: str | None = None
    plan: str | None = None


@dataclass(frozen=True, slots=True)
class QuestionTraits:
    tokens: int
    #: Distinct cues in the order of ``complexity_words``, then ``multi_question``, then ``numbers``.
    cues: tuple[str, ...]


class Router:
    """Chooses a route per question from ``settings.router`` rules.

    Raises :class:`ConfigError` when a rule or the default names an unknown route (listing the known ones),
    when ``any_cues`` names an unknown cue, or when a rule's minimum exceeds its maximum.
    """

    def __init__(self, settings: GenerationSettings, *, count_tokens: Callable[[str], int] = estimate_tokens) -> None:
        self._routes = tuple(settings.routes)
        self._default = settings.default_route
        self._rules = settings.router.rules
        self._count_tokens = count_tokens
        words = settings.router.complexity_words
        self._word_patterns = tuple((w, re.compile(rf"(?<!\w){re.escape(w.casefold())}(?!\w)")) for w in words)
        self.cue_names = (*words, MULTI_QUESTION, NUMBERS)
        self._validate()

    @property
    def routes(self) -> tuple[str, ...]:
        return self._routes

    def traits(self, question: str) -> QuestionTraits:
        folded = question.casefold()
        cues = [word for word, pattern in self._word_patterns if pattern.search(folded)]
        if question.count("?") >= 2:
            cues.append(MULTI_QUESTION)
        if _DIGIT.search(question):
            cues.append(NUMBERS)
        return QuestionTraits(self._count_tokens(question), tuple(dict.fromkeys(cues)))

    def choose(self, question: str, *, intent: str | None = None, plan: str | None = None) -> RouteDecision:
        traits = self.traits(question)
        for index, rule in enumerate(self._rules):
            matched = _match(rule, traits, intent, plan)
            if matched is not None:
                why = ", ".join(matched) or "no conditions"
                return RouteDecision(rule.route, f"rule '{rule.name or f'rule {index + 1}'}': {why}")
        cues = ", ".join(traits.cues)
        return RouteDecision(self._default, f"no rule matched (tokens {traits.tokens}, cues [{cues}]); default route")

    def _validate(self) -> None:
        known = ", ".join(self._routes)
        if self._default not in self._routes:
            raise ConfigError(f"generation.default_route: unknown route '{self._default}' (known routes: {known})")
        for index, rule in enumerate(self._rules):
            where = f"generation.router.rules[{index}]"
            if rule.route not in self._routes:
                raise ConfigError(f"{where}.route: unknown route '{rule.route}' (known routes: {known})")
            unknown = [c for c in rule.any_cues if c not in self.cue_names]
            if unknown:
                raise ConfigError(
                    f"{where}.any_cues: unknown cue(s) {', '.join(unknown)} (known cues: {', '.join(self.cue_names)})"
                )
            for low, high, what in (
                (rule.min_tokens, rule.max_tokens, "tokens"),
                (rule.min_cues, rule.max_cues, "cues"),
            ):
                if low is not None and high is not None and low > high:
                    raise ConfigError(f"{where}: min_{what} ({low}) is greater than max_{what} ({high})")


def _match(rule: RouteRule, traits: QuestionTraits, intent: str | None, plan: str | None) -> list[str] | None:
    """The conditions of ``rule``, described, when all of them hold; None when any fails."""
    tokens, cues = traits.tokens, len(traits.cues)
    shown = f"[{', '.join(traits.cues)}]"
    checks: list[tuple[bool, str]] = []
    if rule.min_tokens is not None:
        checks.append((tokens >= rule.min_tokens, f"tokens {tokens} >= {rule.min_tokens}"))
    if rule.max_tokens is not None:
        checks.append((tokens <= rule.max_tokens, f"tokens {tokens} <= {rule.max_tokens}"))
    if rule.min_cues is not None:
        checks.append((cues >= rule.min_cues, f"cues {shown} >= {rule.min_cues}"))
    if rule.max_cues is not None:
        checks.append((cues <= rule.max_cues, f"cues {shown} <= {rule.max_cues}"))
    if rule.any_cues:
        checks.append(
            (bool(set(rule.any_cues) & set(traits.cues)), f"cues {shown} include one of {list(rule.any_cues)}")
        )
    if rule.intents:
        checks.append((intent in rule.intents, f"intent {intent}"))
    if rule.plans:
        checks.append((plan in rule.plans, f"plan {plan}"))
    return [description for _, description in checks] if all(holds for holds, _ in checks) else None


def cost_report(
    questions: Iterable[RouteQuery | str],
    router: Router,
    settings: GenerationSettings,
    usage_estimator: Callable[[str], Usage],
) -> dict[str, Any]:
    """Cost of routed traffic against sending every question to the most expensive configured model.

    Pure over the given estimates: ``usage_estimator`` gives each question's tokens (prompt with its sources,
    and answer). A route costs what its first model costs; fallbacks are not priced. The most expensive model
    is the one whose total over this traffic is highest. Raises :class:`ConfigError` when a route names a
    model that is not configured.
    """
    queries = [q if isinstance(q, RouteQuery) else RouteQuery(q) for q in questions]
    usages = [usage_estimator(q.question) for q in queries]
    by_route: dict[str, dict[str, Any]] = {}
    for query, usage in zip(queries, usages, strict=True):
        decision = router.choose(query.question, intent=query.intent, plan=query.plan)
        model = _primary_model(settings, decision.route)
        entry = by_route.setdefault(decision.route, {"model": model, "questions": 0, "usd": 0.0})
        entry["questions"] += 1
        entry["usd"] += cost_usd(usage, settings.models[model])
    totals = {name: sum(cost_usd(u, m) for u in usages) for name, m in settings.models.items()}
    baseline_model = max(totals, key=lambda name: totals[name])
    routed = sum(entry["usd"] for entry in by_route.values())
    baseline = totals[baseline_model]
    return {
        "questions": len(queries),
        "routed_usd": routed,
        "baseline_model": baseline_model,
        "baseline_usd": baseline,
        "saved_usd": baseline - routed,
        "saved_pct": 100.0 * (baseline - routed) / baseline if baseline else 0.0,
        "routes": by_route,
    }


def _primary_model(settings: GenerationSettings, route: str) -> str:
    chain = settings.routes[route]
    if not chain or chain[0] not in settings.models:
        known = ", ".join(settings.models)
        raise ConfigError(
            f"generation.routes.{route}: first model {chain[:1]} is not configured (known models: {known})"
        )
    return chain[0]
