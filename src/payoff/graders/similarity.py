"""The ``text_similarity`` metrics, from well-kept libraries. OpenAI names the metrics but not
every library or setting behind them, so where a number can differ from the hosted grader's it
says so here (and in docs/graders.md):

- ``fuzzy_match``: rapidfuzz ``fuzz.WRatio`` with ``utils.default_process``, / 100 (OpenAI: "using
  rapidfuzz"; WRatio with default_process is the call in their own fuzzy-match Python grader
  example; the hosted scorer's exact function is not published);
- ``bleu``: sacrebleu's sentence BLEU / 100 (payoff's ``bleu``; default smoothing "exp");
- ``gleu``: NLTK ``sentence_gleu`` on whitespace tokens;
- ``meteor``: NLTK ``single_meteor_score`` on lower-cased whitespace tokens with exact and Porter-
  stem matching only: WordNet synonym matching is off (WordNet's data is a download, not a
  package), so a synonym-only match scores lower than OpenAI's would;
- ``rouge_1`` .. ``rouge_5``, ``rouge_l``: rouge-score's F-measure (Porter stemmer on);
- ``cosine``: OpenAI embeds with text-embedding-3-large (a hosted model); locally it is the cosine
  of all-MiniLM-L6-v2 embeddings (payoff's ``embedding_cosine`` model), so its numbers differ.
"""

from __future__ import annotations

import functools
from typing import Any

NOT_EXACT = {
    "meteor": "WordNet synonyms not matched (exact and stem stages only)",
    "cosine": "all-MiniLM-L6-v2 embeddings, not OpenAI's text-embedding-3-large",
}


def similarity(metric: str, text: str, reference: str) -> float:
    return _METRICS[metric](text, reference)


def _fuzzy(text: str, reference: str) -> float:
    try:
        from rapidfuzz import fuzz, utils
    except ImportError as error:
        raise RuntimeError("fuzzy_match needs rapidfuzz (pip install 'payoff[text]')") from error
    return fuzz.WRatio(text, reference, processor=utils.default_process) / 100.0


def _bleu(text: str, reference: str) -> float:
    import sacrebleu

    return min(max(sacrebleu.sentence_bleu(text, [reference]).score / 100.0, 0.0), 1.0)


def _gleu(text: str, reference: str) -> float:
    from nltk.translate.gleu_score import sentence_gleu

    return float(sentence_gleu([reference.split()], text.split()))


class _NoSynonyms:
    """Stands in for NLTK's WordNet reader: no synsets, so METEOR matches exact and stem only."""

    def synsets(self, *_: Any, **__: Any) -> list[Any]:
        return []


def _meteor(text: str, reference: str) -> float:
    from nltk.stem.porter import PorterStemmer
    from nltk.translate.meteor_score import single_meteor_score

    return float(single_meteor_score(reference.lower().split(), text.lower().split(), stemmer=PorterStemmer(), wordnet=_NoSynonyms()))


@functools.lru_cache(maxsize=8)
def _rouge_scorer(kind: str) -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer([kind], use_stemmer=True)


def _rouge(kind: str) -> Any:
    def score(text: str, reference: str) -> float:
        return float(_rouge_scorer(kind).score(reference, text)[kind].fmeasure)

    return score


def _cosine(text: str, reference: str) -> float:
    from payoff.rewards.similarity import _embedder

    vectors = _embedder().encode([text, reference], normalize_embeddings=True)
    return min(max(float(vectors[0] @ vectors[1]), -1.0), 1.0)


_METRICS = {
    "fuzzy_match": _fuzzy, "bleu": _bleu, "gleu": _gleu, "meteor": _meteor, "cosine": _cosine,
    **{f"rouge_{n}": _rouge(f"rouge{n}") for n in range(1, 6)}, "rouge_l": _rouge("rougeL"),
}
