"""ConfiguredModels: the model layer the pipeline talks to, built from ``generation`` settings.

Providers and their circuit breakers live as long as the process (a breaker must remember failures across
requests); each request gets a fresh retry/fallback chain over them and a fresh :class:`CallRecord`.
"""

from __future__ import annotations

from answerdesk.config import GenerationSettings
from answerdesk.errors import ConfigError, InputError
from answerdesk.generate.base import LLM, CallRecord
from answerdesk.generate.factory import build_llm
from answerdesk.generate.resilience import CircuitBreakerLLM, resilient_chain
from answerdesk.generate.router import Router
from answerdesk.pipeline import ModelChoice
from answerdesk.types import Principal


class ConfiguredModels:
    def __init__(self, settings: GenerationSettings) -> None:
        self._settings = settings
        self._router = Router(settings)
        for route, chain in settings.routes.items():
            unknown = [m for m in chain if m not in settings.models]
            if unknown or not chain:
                raise ConfigError(
                    f"generation.routes.{route} names unknown model(s) {unknown or '(none)'}; "
                    f"configured models: {', '.join(settings.models)}"
                )
        self._breakers: dict[str, LLM] = {}
        resilience = settings.resilience
        for name, model in settings.models.items():
            self._breakers[name] = CircuitBreakerLLM(
                build_llm(name, model, generation=settings),
                failures=resilience.breaker_failures,
                cooldown_s=resilience.breaker_cooldown_s,
            )
        self._prices = {
            (m.model or name): (m.price_input_per_1k, m.price_output_per_1k) for name, m in settings.models.items()
        }

    @property
    def routes(self) -> tuple[str, ...]:
        return tuple(self._settings.routes)

    def choose(self, question: str, *, principal: Principal, route: str | None = None) -> ModelChoice:
        if route is not None:
            if route not in self._settings.routes:
                models = [m for m in self._settings.models if m not in self._settings.routes]
                if route in models:  # a bare model name is a route of one
                    return self._choice(route, [route], f"requested model {route}")
                known = ", ".join([*self._settings.routes, *models])
                raise InputError(f"unknown model or route '{route}'; known: {known}")
            return self._choice(route, self._settings.routes[route], f"requested route {route}")
        decision = self._router.choose(question)
        return self._choice(decision.route, self._settings.routes[decision.route], decision.reason)

    def _choice(self, route: str, chain: list[str], reason: str) -> ModelChoice:
        record = CallRecord()
        llm = resilient_chain([self._breakers[name] for name in chain], self._settings.resilience, record=record)
        return ModelChoice(route=route, reason=reason, llm=llm, record=record, prices=self._prices)
