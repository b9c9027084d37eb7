"""The guards of one request, composed from the policy in force, failing closed.

:class:`Guardrails` is what the answer pipeline talks to (through its ``AnswerGuards`` Protocol):

- input: PII redaction → word filters → denied topics → prompt attack (each guard reads the text in its
  matching form; later guards see the redacted text, so raw PII goes no further than the PII guard);
- context: prompt attack on each retrieved chunk; a flagged chunk is dropped and recorded;
- output: PII redaction while streaming (:meth:`output_redactor`), then word filters and the grounding and
  relevance scores with the policy's response action (:meth:`check_output`; relevance needs the embedder).

A guard that raises fails *closed* (a BLOCK finding with rule ``guard_error`` saying so) unless the policy's
``failMode`` says ``open``; then the guard is skipped and an ALLOW finding records that it was. The PII guard
never fails open into raw text: open means falling back to its pattern detectors without the recognizer, and
if those fail too the request is blocked. Every finding that acts is written to the audit sink.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
import numpy.typing as npt
from cachetools import LRUCache

from answerdesk.embed.base import Embedder
from answerdesk.errors import ConfigError
from answerdesk.guard.audit import AuditSink
from answerdesk.guard.base import ContextOutcome, Finding, Guard, GuardOutcome, GuardResult, Stage
from answerdesk.guard.grounding import (
    Vector,
    grounding_findings,
    grounding_score,
    plain_sentences,
    relevance_score,
)
from answerdesk.guard.injection import PromptAttackGuard
from answerdesk.guard.ner import INSTALL_HINT, NER_MODEL_PACKAGE, EntityRecognizer, SpacyRecognizer
from answerdesk.guard.pii import PiiGuard, Placeholders
from answerdesk.guard.policy import GuardPolicy, PolicySource
from answerdesk.guard.relevance import RelevanceProbe
from answerdesk.guard.streaming import StreamRedactor
from answerdesk.guard.topics import DeniedTopicsGuard
from answerdesk.guard.words import WordFilterGuard

#: Conversations whose placeholders are remembered (least recently used forgotten first).
MAX_CONVERSATIONS = 4096
#: Retrieved chunks whose injection verdict is remembered, per tenant policy.
CONTEXT_VERDICTS = 16384


@dataclass(frozen=True, slots=True)
class _Guards:
    policy: GuardPolicy
    pii: PiiGuard | None
    words: WordFilterGuard | None
    topics: DeniedTopicsGuard | None
    injection: PromptAttackGuard | None
    #: Context verdicts by chunk digest: the same knowledge-base chunks come back request after request, and a
    #: verdict holds until the policy changes (a reload builds new guards, and a new cache with them).
    context_verdicts: LRUCache[bytes, tuple[Finding, ...]] = field(
        default_factory=lambda: LRUCache(maxsize=CONTEXT_VERDICTS)
    )


class Guardrails:
    """The guards for every tenant, rebuilt when the policy file changes."""

    def __init__(
        self,
        source: PolicySource,
        *,
        embedder: Embedder | None = None,
        recognizer: EntityRecognizer | None = None,
        audit: AuditSink | None = None,
    ) -> None:
        self._source = source
        self._embedder = embedder
        self._recognizer = recognizer
        self._audit = audit
        self._built: dict[str | None, _Guards] = {}
        self._generation = -1
        self._conversations: OrderedDict[str, Placeholders] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def policy_error(self) -> str | None:
        """Why the last policy reload failed (the previous policy is still in force), else ``None``."""
        return self._source.error

    def policy(self, tenant: str | None) -> GuardPolicy:
        return self._guards(tenant).policy

    def placeholders(self, conversation_id: str) -> Placeholders:
        """The placeholder map of a conversation, shared by its questions and answers."""
        with self._lock:
            found = self._conversations.get(conversation_id)
            if found is None:
                found = self._conversations[conversation_id] = Placeholders()
                while len(self._conversations) > MAX_CONVERSATIONS:
                    self._conversations.popitem(last=False)
            else:
                self._conversations.move_to_end(conversation_id)
            return found

    def _guards(self, tenant: str | None) -> _Guards:
        policy_file = self._source.current()
        with self._lock:
            if self._source.generation != self._generation:
                self._built.clear()
                self._generation = self._source.generation
            built = self._built.get(tenant)
        if built is None:
            built = self._build(policy_file.for_tenant(tenant))
            with self._lock:
                self._built[tenant] = built
        return built

    def _build(self, policy: GuardPolicy) -> _Guards:
        pii = None
        if policy.sensitive_information_policy is not None:
            recognizer = self._recognizer
            if policy.sensitive_information_policy.needs_ner and recognizer is None:
                if importlib.util.find_spec(NER_MODEL_PACKAGE) is None:
                    raise ConfigError(
                        f"the guard policy (version {policy.version}) asks for PERSON/LOCATION/ADDRESS: {INSTALL_HINT}"
                    )
                recognizer = self._recognizer = SpacyRecognizer()
            pii = PiiGuard(policy.sensitive_information_policy, recognizer=recognizer)
        topics = None
        if policy.denied_topics:
            if self._embedder is None:
                raise ConfigError("the guard policy has deniedTopics but no embedder is configured for the guards")
            topics = DeniedTopicsGuard(policy.denied_topics, self._embedder)
        return _Guards(
            policy=policy,
            pii=pii,
            words=WordFilterGuard(policy.word_filters) if policy.word_filters else None,
            topics=topics,
            injection=PromptAttackGuard(policy.prompt_attack) if policy.prompt_attack is not None else None,
        )

    # -- input -----------------------------------------------------------------------------------------------

    def check_input(
        self,
        text: str,
        *,
        tenant: str | None,
        request_id: str,
        conversation_id: str | None = None,
        query_vector: npt.NDArray[np.float32] | None = None,
    ) -> GuardOutcome:
        """Run the input guards in order, stopping at the first block; the outcome's text is redacted."""
        g = self._guards(tenant)
        placeholders = self.placeholders(conversation_id or request_id)
        findings: list[Finding] = []
        if g.pii is not None:
            result = self._redact(g, text, "input", placeholders)
            text = result.text
            findings += result.findings
        steps: list[tuple[str, Guard]] = [
            (name, guard) for name, guard in (("words", g.words), ("topics", g.topics), ("injection", g.injection))
            if guard is not None
        ]  # fmt: skip
        for name, guard in steps:
            if any(f.action == "BLOCK" for f in findings):
                break
            if isinstance(guard, DeniedTopicsGuard):
                step = partial(guard.check, text, stage="input", tenant=tenant, query_vector=query_vector)
            else:
                step = partial(guard.check, text, stage="input", tenant=tenant)
            findings += self._run(g.policy, name, "input", step).findings
        return self._finish(g.policy, text, findings, tenant=tenant, request_id=request_id)

    def redact(self, text: str, *, tenant: str | None, conversation_id: str) -> GuardOutcome:
        """PII redaction alone, with the conversation's placeholders: for earlier turns of a conversation,
        which were checked (and audited) when they were asked. A failure leaves the text empty."""
        g = self._guards(tenant)
        if g.pii is None:
            return GuardOutcome(text)
        result = self._redact(g, text, "input", self.placeholders(conversation_id))
        return GuardOutcome(result.text, result.findings, g.policy.blocked_message)

    # -- context ---------------------------------------------------------------------------------------------

    def check_context(self, texts: Sequence[str], *, tenant: str | None, request_id: str) -> ContextOutcome:
        """Score each retrieved chunk for injected instructions; flagged (or unscorable) chunks are dropped."""
        g = self._guards(tenant)
        if g.injection is None or not g.policy.prompt_attack or not g.policy.prompt_attack.apply_to_context:
            return ContextOutcome(kept=tuple(range(len(texts))))
        injection = g.injection
        kept: list[int] = []
        findings: list[Finding] = []
        for i, text in enumerate(texts):
            digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
            with self._lock:
                cached = g.context_verdicts.get(digest)
            if cached is None:
                check = partial(injection.check, text, stage="context")
                cached = self._run(g.policy, "injection", "context", check).findings
                if not any(f.rule == "guard_error" for f in cached):  # a failure is not a verdict: try again next time
                    with self._lock:
                        g.context_verdicts[digest] = cached
            result = GuardResult(text, cached)
            dropping = [f for f in result.findings if f.action in ("BLOCK", "CHALLENGE")]
            findings += [_with_detail(f, f"chunk {i + 1} dropped from the context") for f in dropping]
            findings += [f for f in result.findings if f not in dropping]
            if not dropping:
                kept.append(i)
        self._record(findings, policy=g.policy, tenant=tenant, request_id=request_id)
        return ContextOutcome(kept=tuple(kept), findings=tuple(findings))

    # -- output ----------------------------------------------------------------------------------------------

    def output_redactor(self, *, tenant: str | None, conversation_id: str) -> StreamRedactor | None:
        """A redactor for the answer stream, sharing the conversation's placeholders; ``None`` when the
        policy detects no PII."""
        g = self._guards(tenant)
        if g.pii is None:
            return None
        return StreamRedactor(g.pii, self.placeholders(conversation_id), stage="output")

    def check_output(
        self,
        text: str,
        *,
        question: str,
        sources: Sequence[str],
        tenant: str | None,
        request_id: str,
        redaction: Sequence[Finding] = (),
        sentence_vectors: Mapping[str, Vector] | None = None,
        question_vector: Vector | None = None,
    ) -> GuardOutcome:
        """Word filters and grounding on the finished (already redacted) answer. ``redaction`` holds the
        stream redactor's findings, recorded with these; ``sentence_vectors`` those of the answer's sentences
        already embedded while it streamed (:meth:`relevance_probe`), with the question's
        ``question_vector``. Grounding is skipped when there are no sources."""
        g = self._guards(tenant)
        findings = list(redaction)
        if g.words is not None:
            words = g.words
            findings += self._run(g.policy, "words", "output", lambda: words.check(text, stage="output")).findings
        grounding = g.policy.contextual_grounding
        if grounding is not None and sources and not any(f.action == "BLOCK" for f in findings):

            def score() -> GuardResult:
                findings = grounding_findings(
                    grounding_score(text, sources),
                    self._relevance(
                        text, question, grounding.relevance_threshold, sentence_vectors or {}, question_vector
                    ),
                    grounding,
                )
                return GuardResult(text, findings)

            findings += self._run(g.policy, "grounding", "output", score).findings
        return self._finish(g.policy, text, findings, tenant=tenant, request_id=request_id)

    def relevance_probe(self, question: str, *, tenant: str | None) -> RelevanceProbe | None:
        """A probe that embeds the answer's sentences while it streams, for :meth:`check_output`; ``None``
        when the tenant's policy checks no relevance or there is no embedder."""
        grounding = self._guards(tenant).policy.contextual_grounding
        if grounding is None or self._embedder is None or not question.strip():
            return None
        return RelevanceProbe(self._embedder, question, grounding.relevance_threshold)

    def _relevance(
        self, answer: str, question: str, enough: float, known: Mapping[str, Vector], question_vector: Vector | None
    ) -> float:
        # Word overlap alone says little about relevance (a right answer, "14 days from when it was created",
        # shares no word with "how long is an EU return label valid?"); its threshold is calibrated on MiniLM
        # vectors, so without an embedder the relevance check passes.
        if self._embedder is None or not question.strip() or not answer.strip():
            return 1.0
        lexical = relevance_score(answer, question)
        if lexical >= enough:  # the score is the higher of words and vectors: the vectors cannot fail it now
            return lexical
        if question_vector is None:  # the question as a query: the input guards embedded it (embed/cache.py)
            question_vector = self._embedder.embed_queries([question])[0]
        vectors = dict(known)
        best = relevance_score(answer, question, sentence_vectors=vectors, question_vector=question_vector)
        missing = [s for s in dict.fromkeys(plain_sentences(answer)) if s not in vectors]
        if best >= enough or not missing:  # one sentence that addresses the question is enough
            return best
        vectors.update(zip(missing, self._embedder.embed_passages(missing), strict=True))
        return relevance_score(answer, question, sentence_vectors=vectors, question_vector=question_vector)

    # -- any stage (the CLI) ---------------------------------------------------------------------------------

    def check(self, text: str, *, stage: Stage, tenant: str | None = None, request_id: str = "cli") -> GuardOutcome:
        """The guards of ``stage`` on one text, as the pipeline would run them (context: one chunk)."""
        if stage == "input":
            return self.check_input(text, tenant=tenant, request_id=request_id)
        if stage == "context":
            context = self.check_context([text], tenant=tenant, request_id=request_id)
            policy = self.policy(tenant)
            return GuardOutcome(text if context.kept else "", context.findings, policy.blocked_message)
        redactor = self.output_redactor(tenant=tenant, conversation_id=request_id)
        redaction: tuple[Finding, ...] = ()
        if redactor is not None:
            try:
                text = redactor.push(text) + redactor.flush()
                redaction = redactor.findings
            except Exception as exc:
                return self._finish(
                    self.policy(tenant), "", [self.failure("pii", "output", exc)], tenant=tenant, request_id=request_id
                )
        return self.check_output(
            text, question="", sources=(), tenant=tenant, request_id=request_id, redaction=redaction
        )

    def failure(self, guard: str, stage: Stage, exc: BaseException) -> Finding:
        """The BLOCK finding for a guard that failed with ``exc`` and may not fail open."""
        return Finding(guard=guard, rule="guard_error", action="BLOCK", stage=stage, detail=f"failed closed: {exc}")

    # -- helpers ---------------------------------------------------------------------------------------------

    def _redact(self, g: _Guards, text: str, stage: Stage, placeholders: Placeholders) -> GuardResult:
        assert g.pii is not None
        try:
            return g.pii.redact(text, stage=stage, placeholders=placeholders)
        except ConfigError:
            raise
        except Exception as exc:
            if not g.policy.fails_open("pii"):
                return GuardResult("", (self.failure("pii", stage, exc),))
            try:
                result = g.pii.without_ner().redact(text, stage=stage, placeholders=placeholders)
            except Exception as again:
                return GuardResult("", (self.failure("pii", stage, again),))
            note = Finding(
                guard="pii", rule="guard_error", action="ALLOW", stage=stage,
                detail=f"failed open to patterns only (names, places and addresses not redacted): {exc}",
            )  # fmt: skip
            return GuardResult(result.text, (note, *result.findings))

    def _run(self, policy: GuardPolicy, name: str, stage: Stage, step: Callable[[], GuardResult]) -> GuardResult:
        try:
            return step()
        except ConfigError:
            raise
        except Exception as exc:
            if policy.fails_open(name):
                note = Finding(
                    guard=name, rule="guard_error", action="ALLOW", stage=stage, detail=f"failed open: {exc}"
                )
                return GuardResult("", (note,))
            return GuardResult("", (self.failure(name, stage, exc),))

    def _finish(
        self, policy: GuardPolicy, text: str, findings: list[Finding], *, tenant: str | None, request_id: str
    ) -> GuardOutcome:
        self._record(findings, policy=policy, tenant=tenant, request_id=request_id)
        return GuardOutcome(text, tuple(findings), policy.blocked_message)

    def _record(self, findings: Sequence[Finding], *, policy: GuardPolicy, tenant: str | None, request_id: str) -> None:
        if self._audit is not None and findings:
            self._audit.record(findings, request_id=request_id, tenant=tenant, policy_version=policy.version)


def _with_detail(finding: Finding, detail: str) -> Finding:
    return replace(finding, detail=f"{finding.detail}; {detail}" if finding.detail else detail)
