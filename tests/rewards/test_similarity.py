"""Similarity rewards against the libraries that define them, and the real embedding model."""

from __future__ import annotations

import pytest
import sacrebleu
from rouge_score import rouge_scorer

import payoff
from payoff.core import RewardParameterError
from payoff.rewards import bleu, chrf, embedding_cosine, rouge

REFERENCE = "The quick brown fox jumps over the lazy dog."
CLOSE = "<think>paraphrase</think> A quick brown fox jumped over a lazy dog."
FAR = "Interest rates rose sharply in the third quarter."


def test_bleu_and_chrf_are_sacrebleu_scaled_to_unit_interval() -> None:
    hypothesis = "A quick brown fox jumped over a lazy dog."
    assert bleu({"completion": CLOSE, "reference": REFERENCE}).score == pytest.approx(sacrebleu.sentence_bleu(hypothesis, [REFERENCE]).score / 100)
    assert chrf({"completion": CLOSE, "reference": [FAR, REFERENCE]}).score == pytest.approx(sacrebleu.sentence_chrf(hypothesis, [FAR,
        REFERENCE]).score / 100)
    assert bleu({"completion": REFERENCE, "reference": REFERENCE}).score == 1.0
    assert bleu({"completion": "x"}).status == "abstain"


def test_rouge_is_the_best_f_measure_over_references() -> None:
    scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)
    expected = scorer.score(REFERENCE, "A quick brown fox jumped over a lazy dog.")["rouge1"].fmeasure
    assert rouge.configure(kind="rouge1")({"completion": CLOSE, "reference": [FAR, REFERENCE]}).score == pytest.approx(expected)
    with pytest.raises(RewardParameterError, match="kind"):  # refused when configured, not per sample
        rouge.configure(kind="rouge9")


def test_embedding_cosine_with_the_real_offline_model_in_a_worker() -> None:
    samples = [{"completion": c, "reference": REFERENCE} for c in (REFERENCE, CLOSE, FAR)]
    exact, close, far = (o.score for o in payoff.score(samples, embedding_cosine, workers=1, timeout_s=120))
    assert exact == pytest.approx(1.0, abs=1e-5)
    assert far < 0.5 < close < exact
