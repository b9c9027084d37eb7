"""Prompt-injection and jailbreak defence for questions and for retrieved chunks.

Layered, cheapest first, all over the matching form of the text (:mod:`answerdesk.guard.normalize`, so
homoglyphs, invisible characters and leetspeak do not hide anything):

1. rules (:mod:`answerdesk.guard._heuristics`): override instructions, unrestricted personas, system-prompt
   extraction — also read through rot13;
2. the hashed n-gram classifier (:mod:`answerdesk.guard.classifier`), trained by
   ``python -m answerdesk.guard.train_injection``;
3. encoded payloads (base64, hex, rot13) are decoded and put through 1 and 2 again.

The score is the highest of the three. The guard only scores one text: at the context stage the caller drops
the chunk a BLOCK finding points at and records that it did. The caller also picks the policy per tenant.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from answerdesk.errors import ConfigError, GuardError
from answerdesk.guard._heuristics import RULE_SCORE, decoded_payloads, rule_hits
from answerdesk.guard.base import Finding, GuardResult, Stage
from answerdesk.guard.classifier import InjectionModel, packaged_model
from answerdesk.guard.normalize import normalize_for_matching

#: The packaged model's threshold, chosen by its training run: the lowest score whose false-positive rate is at
#: most 1 % both out of fold on the benign training text and on general assistant requests held out of
#: training. On the validation split it gives the figures in the README. ``tests`` check it matches the file.
DEFAULT_THRESHOLD = 0.615


class PromptAttackPolicy(BaseModel):
    """``promptAttack`` in the policy file."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    #: Attack score at or above which a text is an attack.
    threshold: float = Field(default=DEFAULT_THRESHOLD, ge=0.0, le=1.0)
    action: Literal["BLOCK", "CHALLENGE"] = "BLOCK"
    #: Also score retrieved chunks (indirect injection); a poisoned chunk is dropped from the context.
    apply_to_context: bool = Field(default=True, alias="applyToContext")
    #: Let the classifier, not only the rules, drop a retrieved chunk (off: it was trained on prompts and
    #: misfires on ordinary documents; see :meth:`PromptAttackGuard.check`).
    classify_context: bool = Field(default=False, alias="classifyContext")


@dataclass(frozen=True, slots=True)
class AttackScore:
    """Why a text scored what it did. ``rule`` is the first rule that fired (``None`` if none did)."""

    score: float
    classifier: float
    rule: str | None
    #: The rule or classifier fired on a decoded payload rather than on the text itself.
    encoded: bool
    #: The normalized text the rule matched (hashed into the finding, never stored).
    matched: str

    @property
    def reason(self) -> str:
        kind = self.rule or "classifier"
        return f"encoded-{kind}" if self.encoded else kind


_ROT13 = str.maketrans("abcdefghijklmnopqrstuvwxyz", "nopqrstuvwxyzabcdefghijklm")  # normalized text is lower-case


def score_attack(text: str, model: InjectionModel) -> AttackScore:
    """Score ``text`` with the rules, the classifier and its decoded payloads; the highest wins."""
    normalized = normalize_for_matching(text)
    best = _score_normalized(normalized, model, encoded=False)
    if best.rule is None:
        rot = _score_rules(normalized.translate(_ROT13))
        if rot is not None:
            best = AttackScore(RULE_SCORE, best.classifier, rot[0], True, rot[1])
    for payload in decoded_payloads(text):
        if best.score >= RULE_SCORE:
            break
        candidate = _score_normalized(normalize_for_matching(payload), model, encoded=True)
        if candidate.score > best.score:
            best = candidate
    return best


def _score_normalized(normalized: str, model: InjectionModel, *, encoded: bool) -> AttackScore:
    classifier = model.score_normalized(normalized)
    rule = _score_rules(normalized)
    if rule is not None:
        return AttackScore(max(RULE_SCORE, classifier), classifier, rule[0], encoded, rule[1])
    return AttackScore(classifier, classifier, None, encoded, normalized)


def _score_rules(normalized: str) -> tuple[str, str] | None:
    hits = rule_hits(normalized)
    if not hits:
        return None
    start, end = hits[0].span
    return hits[0].rule, normalized[start:end]


class PromptAttackGuard:
    """Flags prompt injection and jailbreak attempts in questions (stage ``input``) and retrieved chunks
    (stage ``context``, unless the policy turns it off). Answers (stage ``output``) pass unchecked."""

    def __init__(self, policy: PromptAttackPolicy | None = None, *, model: InjectionModel | None = None) -> None:
        self._policy = policy or PromptAttackPolicy()
        self._model = model

    @property
    def name(self) -> str:
        return "injection"

    @property
    def policy(self) -> PromptAttackPolicy:
        return self._policy

    def score(self, text: str) -> AttackScore:
        """The attack score of ``text``. Raises ``GuardError`` if the model cannot be read or scoring fails."""
        try:
            model = self._model or packaged_model()
            return score_attack(text, model)
        except ConfigError as exc:
            raise GuardError(self.name, f"cannot load its model: {exc}") from exc
        except Exception as exc:  # a detector bug must surface as a guard failure, so the caller fails closed
            raise GuardError(self.name, str(exc)) from exc

    def check(self, text: str, *, stage: Stage, tenant: str | None = None) -> GuardResult:
        if stage == "output" or (stage == "context" and not self._policy.apply_to_context):
            return GuardResult(text)
        result = self.score(text)
        if result.score < self._policy.threshold:
            return GuardResult(text)
        if stage == "context" and result.rule is None and not self._policy.classify_context:
            # The classifier learned prompts, not documents: on retrieved passages it misfires (at its threshold
            # it flagged 9 % of the Parcelwise help centre's chunks and 59 % of 3,000 MTRAG passages, while the
            # rules flagged none of either), so by default only the rules, also on decoded payloads, drop a chunk.
            return GuardResult(text)
        finding = Finding(
            guard=self.name,
            rule=result.reason,
            action=self._policy.action,
            stage=stage,
            score=round(result.score, 4),
            match_sha256=hashlib.sha256(result.matched.encode("utf-8")).hexdigest(),
            detail=f"prompt-attack score {result.score:.3f} >= {self._policy.threshold:.3f}",
        )
        return GuardResult(text, (finding,))
