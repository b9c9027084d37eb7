"""Rule-based routing: first matching rule wins, reasons say why, bad config fails naming what is known."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from answerdesk.config import GenerationSettings, ModelSettings, RouterSettings, RouteRule
from answerdesk.errors import ConfigError
from answerdesk.generate.router import RouteDecision, RouteQuery, Router, cost_report
from answerdesk.types import Usage

MODELS = {
    "small": ModelSettings(kind="openai_compat", model="small", price_input_per_1k=0.1, price_output_per_1k=0.2),
    "big": ModelSettings(kind="openai_compat", model="big", price_input_per_1k=1.0, price_output_per_1k=2.0),
    "extractive": ModelSettings(kind="extractive"),
}
ROUTES = {"cheap": ["small", "extractive"], "smart": ["big", "small", "extractive"], "default": ["small"]}
RULES = (
    RouteRule(name="enterprise", route="smart", plans=("enterprise",)),
    RouteRule(name="complex", route="smart", min_cues=2),
    RouteRule(name="long", route="smart", min_tokens=60),
    RouteRule(name="short-simple", route="cheap", max_tokens=30, max_cues=0),
)


def generation(rules: tuple[RouteRule, ...] = RULES, **overrides: Any) -> GenerationSettings:
    values: dict[str, Any] = {"models": MODELS, "routes": ROUTES, "router": RouterSettings(rules=rules)}
    return GenerationSettings(**(values | overrides))


def test_a_short_simple_question_goes_to_the_cheap_route() -> None:
    decision = Router(generation()).choose("How do I reset my password?")
    assert decision == RouteDecision("cheap", "rule 'short-simple': tokens 7 <= 30, cues [] <= 0")


def test_complexity_cues_send_a_question_to_the_smart_route() -> None:
    decision = Router(generation()).choose("Why was I charged twice? Can you explain the 2 charges?")
    assert decision.route == "smart"
    assert decision.reason == "rule 'complex': cues [why, explain, multi_question, numbers] >= 2"


def test_cues_are_whole_words_in_any_case() -> None:
    router = Router(generation())
    assert router.traits("WHY is this? Compare plans").cues == ("why", "compare")
    assert router.traits("Whyte street, explanatory note").cues == ()


def test_the_tenant_plan_routes_before_anything_else() -> None:
    decision = Router(generation()).choose("Hi", plan="enterprise")
    assert decision == RouteDecision("smart", "rule 'enterprise': plan enterprise")


def test_the_first_matching_rule_wins() -> None:
    rules = (RouteRule(route="cheap", max_tokens=100), RouteRule(route="smart", max_tokens=100))
    assert Router(generation(rules)).choose("Hi").route == "cheap"


def test_intent_rules_and_unnamed_rules() -> None:
    rules = (RouteRule(route="smart", intents=("billing_dispute",)),)
    router = Router(generation(rules))
    assert router.choose("Hi", intent="billing_dispute") == RouteDecision(
        "smart", "rule 'rule 1': intent billing_dispute"
    )
    assert router.choose("Hi", intent="greeting").route == "default"


def test_any_cues_matches_one_of_the_named_cues() -> None:
    router = Router(generation((RouteRule(route="smart", any_cues=("compare", "numbers")),)))
    assert router.choose("Compare the basic and pro plans").route == "smart"
    assert router.choose("What is the pro plan?").route == "default"


def test_no_match_takes_the_default_route_and_says_so() -> None:
    question = "I moved house last month and want to update the address on my account and on invoices already sent"
    decision = Router(generation((RouteRule(route="smart", min_tokens=1000),))).choose(question)
    assert decision.route == "default"
    assert decision.reason == "no rule matched (tokens 25, cues []); default route"


def test_a_decision_cannot_be_changed_after_it_is_recorded() -> None:
    decision = Router(generation()).choose("Hi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.route = "smart"  # type: ignore[misc]


def test_an_unknown_route_in_a_rule_lists_the_known_routes() -> None:
    with pytest.raises(ConfigError, match=r"rules\[0\]\.route: unknown route 'premium' \(known routes: cheap, smart"):
        Router(generation((RouteRule(route="premium"),)))


def test_an_unknown_default_route_lists_the_known_routes() -> None:
    with pytest.raises(ConfigError, match=r"default_route: unknown route 'fast'.*cheap, smart, default"):
        Router(generation(default_route="fast"))


def test_an_unknown_cue_lists_the_known_cues() -> None:
    with pytest.raises(ConfigError, match=r"unknown cue.*how.*known cues: why, compare.*multi_question, numbers"):
        Router(generation((RouteRule(route="smart", any_cues=("how",)),)))


def test_a_minimum_above_its_maximum_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"min_tokens \(50\) is greater than max_tokens \(10\)"):
        Router(generation((RouteRule(route="smart", min_tokens=50, max_tokens=10),)))


def test_rules_load_from_settings_data() -> None:
    settings = GenerationSettings.model_validate(
        {
            "models": {"small": {"kind": "openai_compat"}},
            "routes": {"default": ["small"], "cheap": ["small"]},
            "router": {"rules": [{"route": "cheap", "max_tokens": 10}], "complexity_words": ["why"]},
        }
    )
    assert Router(settings).choose("Hi").route == "cheap"


def test_cost_report_compares_routed_traffic_with_the_most_expensive_model() -> None:
    questions: list[RouteQuery | str] = [
        "How do I reset my password?",
        "Where is my invoice?",
        RouteQuery("Why did my bill go up? Explain it.", plan="starter"),
    ]

    report = cost_report(questions, Router(generation()), generation(), lambda q: Usage(1000, 200))

    small, big = 0.1 + 0.2 * 0.2, 1.0 + 2.0 * 0.2  # per question: 1,000 input and 200 output tokens
    assert report["questions"] == 3
    assert report["baseline_model"] == "big"
    assert report["baseline_usd"] == pytest.approx(3 * big)
    assert report["routed_usd"] == pytest.approx(2 * small + big)
    assert report["saved_usd"] == pytest.approx(2 * (big - small))
    assert report["saved_pct"] == pytest.approx(100 * 2 * (big - small) / (3 * big))
    assert report["routes"]["cheap"] == {"model": "small", "questions": 2, "usd": pytest.approx(2 * small)}
    assert report["routes"]["smart"]["questions"] == 1


def test_cost_report_refuses_a_route_whose_model_is_not_configured() -> None:
    settings = generation(routes={**ROUTES, "cheap": ["tiny"]})
    with pytest.raises(ConfigError, match=r"routes\.cheap: first model \['tiny'\] is not configured"):
        cost_report(["Hi"], Router(settings), settings, lambda q: Usage(10, 10))
