"""Train the packaged prompt-attack classifier: ``python -m answerdesk.guard.train_injection [--data DIR]``.

Data (``DIR`` holds the ``guard/``, ``traffic/`` and ``rag/`` folders of the evaluation data):

- ``guard/guardrail_dev.jsonl``, labels ``injection`` / ``jailbreak`` (attacks) and ``benign``; ``harmful``
  rows are requests, not attacks on the instructions, and belong to the denied-topics guard, so they are left
  out. Exact duplicates (after normalization) are dropped, then the rows are split into train and validation
  by a seeded hash of the text, stratified by label and source. Only the validation split is reported.
- Benign training text whose licence allows shipping weights learned from it: banking77 (CC BY 4.0) and
  CLINC150 (CC BY 3.0) support utterances (a seeded half of each; the other half is held out for the
  false-positive benchmark), MTRAG questions (Apache-2.0) and the ABCD agent guidelines (MIT), cut into
  paragraphs so the model also sees knowledge-base prose (retrieved chunks are scored too).
- Alpaca rows (CC BY-NC) are never trained on: they stay in the validation split as benign text to measure
  false positives, and the train-split ones are unused.

The model is logistic regression (scikit-learn, training only) over :func:`classifier.hashed_features`. The
regularisation and the threshold are chosen by 5-fold cross-validation on the training split (the threshold is
the lowest score whose out-of-fold false-positive rate is at most :data:`TARGET_FPR`), so validation figures are
not tuned on. The shipped file holds only hashed-feature weights, never text.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from answerdesk.errors import ConfigError
from answerdesk.guard._synthetic import synthetic_instructions
from answerdesk.guard.classifier import MODEL_FILE, WINDOW_CHARS, WINDOW_STRIDE, InjectionModel, hashed_features
from answerdesk.guard.normalize import normalize_for_matching

SEED = "answerdesk-guard-2026"
VALIDATION_FRACTION = 0.2
TRAFFIC_HOLDOUT_FRACTION = 0.5
ATTACK_LABELS = frozenset({"injection", "jailbreak"})
#: Sources never trained on (licence): substring of the ``source`` field.
UNTRAINABLE_SOURCES = ("alpaca",)
TARGET_FPR = 0.01
DIM_BITS = 18
C_GRID = (2.0, 8.0, 32.0)
MAX_WINDOWS = 4
SYNTHETIC_COUNT = 3000

FloatArray = npt.NDArray[np.float64]
#: (sparse window features, labels, sample weights, owning example of each window)
_Features = tuple[Any, FloatArray, FloatArray, npt.NDArray[np.int64]]


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    label: str  # injection | jailbreak | benign | harmful | traffic
    source: str

    @property
    def attack(self) -> bool:
        return self.label in ATTACK_LABELS


def _unit(key: str) -> float:
    """A number in [0, 1) fixed by ``key`` and the seed: the split does not depend on file order."""
    digest = hashlib.blake2b(f"{SEED}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def dev_split(data_dir: Path) -> tuple[list[Example], list[Example]]:
    """(train, validation) of the guardrail dev set, deduplicated, stratified by label and source family."""
    seen: dict[str, Example | None] = {}
    for row in read_jsonl(data_dir / "guard" / "guardrail_dev.jsonl"):
        key = normalize_for_matching(row["text"])
        example = Example(row["text"], row["label"], row["source"])
        if key in seen:
            previous = seen[key]
            if previous is not None and previous.label != example.label:
                seen[key] = None  # the same text under two labels teaches nothing
            continue
        seen[key] = example
    strata: dict[tuple[str, str], list[Example]] = defaultdict(list)
    for kept in seen.values():
        if kept is not None:
            strata[(kept.label, kept.source.split("/")[0])].append(kept)
    train: list[Example] = []
    validation: list[Example] = []
    for members in strata.values():
        members.sort(key=lambda e: _unit(e.text))
        cut = round(len(members) * VALIDATION_FRACTION)
        validation.extend(members[:cut])
        train.extend(members[cut:])
    return train, validation


def traffic_split(data_dir: Path) -> tuple[list[Example], list[Example]]:
    """(train, held-out) halves of the banking77 and CLINC150 utterances: every one benign support traffic."""
    train: list[Example] = []
    held_out: list[Example] = []
    for name in ("banking77", "clinc150"):
        texts = {row["text"] for row in read_jsonl(data_dir / "traffic" / name / "utterances.jsonl")}
        for text in sorted(texts):
            example = Example(text, "traffic", name)
            (held_out if _unit(f"traffic:{text}") < TRAFFIC_HOLDOUT_FRACTION else train).append(example)
    return train, held_out


def extra_benign(data_dir: Path) -> list[Example]:
    """Questions and knowledge-base paragraphs whose licences allow training a shipped model."""
    out = [
        Example(row["question"], "benign", "mtrag/question")
        for row in read_jsonl(data_dir / "rag" / "mtrag-human" / "questions.jsonl")
    ]
    for row in read_jsonl(data_dir / "rag" / "abcd-support" / "corpus.jsonl"):
        out.extend(Example(p, "benign", "abcd/paragraph") for p in row["text"].split("\n") if len(p) > 40)
    return out


def training_set(data_dir: Path) -> list[Example]:
    train, _ = dev_split(data_dir)
    usable = [
        e
        for e in train
        if e.label in ATTACK_LABELS | {"benign"} and not any(s in e.source for s in UNTRAINABLE_SOURCES)
    ]
    synthetic = [Example(t, "benign", "synthetic") for t in synthetic_instructions(SYNTHETIC_COUNT)]
    return usable + traffic_split(data_dir)[0] + extra_benign(data_dir) + synthetic


def calibration_set(data_dir: Path) -> list[Example]:
    """Benign train-split rows that are never trained on (licence) but whose false-positive rate sets the
    threshold: general assistant requests unlike support traffic. Only their scores are used."""
    train, _ = dev_split(data_dir)
    return [e for e in train if e.label == "benign" and any(s in e.source for s in UNTRAINABLE_SOURCES)]


def windows(normalized: str) -> list[str]:
    """The windows :meth:`InjectionModel.score_normalized` scores, at most :data:`MAX_WINDOWS` of them."""
    if len(normalized) <= WINDOW_CHARS:
        return [normalized]
    starts = list(range(0, len(normalized) - WINDOW_STRIDE, WINDOW_STRIDE))
    picked = (
        starts
        if len(starts) <= MAX_WINDOWS
        else [starts[round(i)] for i in np.linspace(0, len(starts) - 1, MAX_WINDOWS)]
    )
    return [normalized[s : s + WINDOW_CHARS] for s in picked]


def threshold_for_fpr(negative_scores: Sequence[float], fpr: float) -> float:
    """The lowest threshold (``score >= threshold`` flags) whose false-positive rate is at most ``fpr``."""
    ordered = sorted(negative_scores, reverse=True)
    allowed = int(np.floor(fpr * len(ordered)))
    if allowed >= len(ordered):
        return 0.0
    return float(np.nextafter(ordered[allowed], np.inf))


def tpr_at_threshold(positive_scores: Sequence[float], threshold: float) -> float:
    return sum(s >= threshold for s in positive_scores) / len(positive_scores) if positive_scores else 0.0


def _matrix(examples: Sequence[Example]) -> _Features:
    """Sparse features of every window, labels, sample weights (1/windows), and each window's example index."""
    from scipy.sparse import csr_matrix

    indptr = [0]
    indices: list[npt.NDArray[np.int64]] = []
    values: list[npt.NDArray[np.float32]] = []
    labels: list[float] = []
    weights: list[float] = []
    owner: list[int] = []
    for i, example in enumerate(examples):
        parts = windows(normalize_for_matching(example.text))
        for part in parts:
            idx, val = hashed_features(part, DIM_BITS)
            indices.append(idx)
            values.append(val)
            indptr.append(indptr[-1] + len(idx))
            labels.append(float(example.attack))
            weights.append(1.0 / len(parts))
            owner.append(i)
    matrix = csr_matrix(
        (np.concatenate(values), np.concatenate(indices), np.asarray(indptr)), shape=(len(labels), 1 << DIM_BITS)
    )
    return matrix, np.asarray(labels), np.asarray(weights), np.asarray(owner)


def _fit(matrix: Any, labels: FloatArray, weights: FloatArray, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    positives = labels.sum()
    balance = np.where(labels > 0, len(labels) / (2 * positives), len(labels) / (2 * (len(labels) - positives)))
    model = LogisticRegression(C=c, solver="liblinear", max_iter=200, random_state=0)
    model.fit(matrix, labels, sample_weight=weights * balance)
    return model


def _per_example(window_scores: FloatArray, owner: npt.NDArray[np.int64], n: int) -> FloatArray:
    out = np.zeros(n)
    np.maximum.at(out, owner, window_scores)
    return out


def _cross_validate(
    examples: Sequence[Example],
    features: _Features,
    calibration: Any,
    c: float,
    folds: int = 5,
) -> tuple[FloatArray, FloatArray]:
    """Out-of-fold scores per example (the max over its windows; an example's windows share a fold), and the
    calibration rows' scores averaged over the fold models."""
    matrix, labels, weights, owner = features
    fold_of = np.asarray([int(_unit(f"fold:{e.text}") * folds) for e in examples])[owner]
    scores = np.zeros(len(labels))
    calibration_scores = np.zeros(calibration[0].shape[0])
    for fold in range(folds):
        held = fold_of == fold
        model = _fit(matrix[~held], labels[~held], weights[~held], c)
        scores[held] = model.predict_proba(matrix[held])[:, 1]
        calibration_scores += model.predict_proba(calibration[0])[:, 1] / folds
    return _per_example(scores, owner, len(examples)), _per_example(
        calibration_scores, calibration[3], calibration[3].max() + 1
    )


def _threshold(benign_oof: FloatArray, calibration_scores: FloatArray) -> float:
    """The threshold that keeps both the trained-on benign text (out of fold) and the calibration rows at or
    under the target false-positive rate."""
    return max(
        threshold_for_fpr(benign_oof.tolist(), TARGET_FPR), threshold_for_fpr(calibration_scores.tolist(), TARGET_FPR)
    )


def train(data_dir: Path, *, log: Any = print) -> InjectionModel:
    examples = training_set(data_dir)
    calibration_examples = calibration_set(data_dir)
    counts = Counter(e.label if e.label != "benign" else f"benign:{e.source.split('/')[0]}" for e in examples)
    log(f"training examples: {len(examples)} {dict(sorted(counts.items()))}")
    log(f"calibration rows: {len(calibration_examples)}")
    attack = np.asarray([e.attack for e in examples])
    features = _matrix(examples)
    calibration = _matrix(calibration_examples)
    best: tuple[float, float] | None = None
    for c in C_GRID:
        started = time.perf_counter()
        oof, calibration_scores = _cross_validate(examples, features, calibration, c)
        threshold = _threshold(oof[~attack], calibration_scores)
        tpr = tpr_at_threshold(oof[attack].tolist(), threshold)
        seconds = time.perf_counter() - started
        log(f"C={c:g}: out-of-fold TPR {tpr:.3f} at FPR<={TARGET_FPR}, threshold {threshold:.3f} [{seconds:.0f} s]")
        if best is None or tpr > best[1]:
            best = (c, tpr)
    assert best is not None
    c, oof_tpr = best
    matrix, labels, weights, _ = features
    model = _fit(matrix, labels, weights, c)
    oof, _ = _cross_validate(examples, features, calibration, c)
    final_calibration = _per_example(
        model.predict_proba(calibration[0])[:, 1], calibration[3], len(calibration_examples)
    )
    threshold = _threshold(oof[~attack], final_calibration)
    meta = {
        "c": c,
        "dim_bits": DIM_BITS,
        "seed": SEED,
        "target_fpr": TARGET_FPR,
        "oof_tpr": round(oof_tpr, 4),
        "training_examples": dict(sorted(counts.items())),
        "calibration_rows": len(calibration_examples),
        "untrained_sources": list(UNTRAINABLE_SOURCES),
    }
    return InjectionModel(
        weights=model.coef_[0].astype(np.float32),
        bias=float(model.intercept_[0]),
        dim_bits=DIM_BITS,
        threshold=threshold,
        meta=meta,
    )


def validation_report(model: InjectionModel, examples: Iterable[Example]) -> dict[str, Any]:
    """Classifier-only TPR/FPR on the validation split at the model's threshold (the bench adds the rules)."""
    scored = [(e, model.score_normalized(normalize_for_matching(e.text))) for e in examples if e.label != "harmful"]
    positives = [s for e, s in scored if e.attack]
    negatives = [s for e, s in scored if not e.attack]
    return {
        "attacks": len(positives),
        "benign": len(negatives),
        "tpr": round(tpr_at_threshold(positives, model.threshold), 4),
        "fpr": round(tpr_at_threshold(negatives, model.threshold), 4),
    }


PACKAGED_MODEL = Path(__file__).with_name(MODEL_FILE)


def train_and_save(data_dir: Path, out: Path, *, log: Any = print) -> dict[str, Any]:
    """Train, write the weights to ``out``, and return the validation report. Raises ``ConfigError`` when
    scikit-learn is missing or the data folder lacks a file."""
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise ConfigError("training needs scikit-learn: pip install 'answerdesk[bench]'") from exc
    if not (data_dir / "guard" / "guardrail_dev.jsonl").exists():
        raise ConfigError(f"{data_dir} has no guard/guardrail_dev.jsonl (pass the evaluation data folder)")
    model = train(data_dir, log=log)
    model.save(out)
    _, validation = dev_split(data_dir)
    log(f"wrote {out} ({out.stat().st_size // 1024} KB), threshold {model.threshold:.3f}")
    return {"threshold": model.threshold, "validation": validation_report(model, validation)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m answerdesk.guard.train_injection", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder with guard/, traffic/, rag/")
    parser.add_argument("--out", type=Path, default=PACKAGED_MODEL, help="weights file to write")
    args = parser.parse_args(argv)
    try:
        result = train_and_save(args.data, args.out)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print("validation (classifier only):", json.dumps(result["validation"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
