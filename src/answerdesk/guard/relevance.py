"""Relevance of a streaming answer, worked out while it streams.

The relevance check (:func:`answerdesk.guard.grounding.relevance_score`) scores an answer by its best
sentence, so each sentence can be embedded as soon as it is complete, while the model is still writing the
next one, and nothing more is embedded once one sentence addresses the question (or the words of the answer
so far already take up the question's). By the time the answer is
finished its check usually has the vectors it needs: on a two-sentence answer that passes on its first
sentence, the finished answer is not embedded at all (before, embedding it was 9.8 ms of a streamed
answer's overhead on one core).

:class:`RelevanceProbe` holds the streamed text and the vectors; :meth:`RelevanceProbe.feed` says which
sentences are ready (pure bookkeeping, cheap enough for every delta) and :meth:`RelevanceProbe.embed` embeds
them (blocking: run it in a worker thread). The finished answer's check takes :attr:`RelevanceProbe.vectors`
and embeds only the sentences still missing.
"""

from __future__ import annotations

from answerdesk.embed.base import Embedder
from answerdesk.generate.sentences import content_words, sentence_cut, split_sentences
from answerdesk.guard.grounding import Vector, answer_sentences, plain, plain_sentences


class RelevanceProbe:
    """Embeds the complete sentences of a streaming answer until one reaches ``threshold`` (cosine to the
    question). One :meth:`embed` at a time, and its results read once it is done (the pipeline awaits it);
    :meth:`feed` from the streaming task."""

    def __init__(self, embedder: Embedder, question: str, threshold: float) -> None:
        self._embedder = embedder
        self._question = question
        self._threshold = threshold
        self._text = ""
        self._cut = 0  # the text before it is complete sentences, already looked at
        self._asked = set(content_words(question))
        self._said: set[str] = set()
        self._taken: set[str] = set()
        self._question_vector: Vector | None = None
        #: Sentence (as :func:`plain_sentences` gives it) → vector, for the finished answer's check.
        self.vectors: dict[str, Vector] = {}
        #: A sentence reached the threshold: the answer is relevant whatever follows.
        self.satisfied = not self._asked  # a question without content words: relevance scores 1.0

    @property
    def question_vector(self) -> Vector | None:
        """The question's vector, once :meth:`embed` ran."""
        return self._question_vector

    def feed(self, text: str) -> list[str]:
        """Add streamed ``text``; the complete sentences not yet handed out (none once satisfied). The last
        sentence of the text so far may still grow, so it waits for the next one or the end. Each call looks
        only at the sentence in progress, so a long answer costs linear time."""
        self._text += text
        if self.satisfied:
            return []
        cut = sentence_cut(self._text, self._cut)
        if cut == self._cut:
            return []
        complete, self._cut = split_sentences(self._text[self._cut : cut]), cut
        fresh = self._take([plain(s) for piece in complete for s in answer_sentences(piece)])
        for sentence in fresh:
            self._said.update(content_words(sentence))
        # The same share of the question's words that relevance_score counts on the whole answer.
        if fresh and len(self._asked & self._said) / len(self._asked) >= self._threshold:
            self.satisfied = True  # the words already take up the question: no vector can fail it
            return []
        return fresh

    def rest(self) -> list[str]:
        """At the end of the stream: every sentence not yet handed out (none once satisfied)."""
        return [] if self.satisfied else self._take(plain_sentences(self._text))

    def embed(self, sentences: list[str]) -> None:
        """Embed ``sentences`` (and the question, once; its vector is usually cached) and note whether one
        passes. Blocking."""
        if not sentences:
            return
        if self._question_vector is None:
            self._question_vector = self._embedder.embed_queries([self._question])[0]
        for sentence, vector in zip(sentences, self._embedder.embed_passages(sentences), strict=True):
            self.vectors[sentence] = vector
            if float(vector @ self._question_vector) >= self._threshold:
                self.satisfied = True

    def _take(self, sentences: list[str]) -> list[str]:
        fresh = [s for s in dict.fromkeys(sentences) if s not in self._taken]
        self._taken.update(fresh)
        return fresh
