"""Selection methods on hand-computed examples, pass@k against a brute-force count, clustering by
math equivalence, and `payoff select` on a real candidates file."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from payoff.select.cluster import cluster_answers
from payoff.select.curves import scaling_curves
from payoff.select.methods import aggregate_steps, best_of_n, borda, majority, pass_at_k, self_certainty, weighted_vote


def c(answer, score=None, certainty=None, correct=False):
    return {"completion": str(answer), "answer": answer, "score": score, "self_certainty": certainty, "correct": correct}


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10), st.data())
def test_pass_at_k_is_the_share_of_k_subsets_with_a_correct_sample(n: int, data: st.DataObject) -> None:
    correct = data.draw(st.integers(0, n))
    k = data.draw(st.integers(1, n))
    flags = [True] * correct + [False] * (n - correct)
    subsets = list(itertools.combinations(range(n), k))
    brute = sum(any(flags[i] for i in s) for s in subsets) / len(subsets)
    assert pass_at_k(n, correct, k) == pytest.approx(brute)


def test_votes_and_their_ties() -> None:
    pool = [c("a", 0.9), c("b", 0.2), c("b", 0.3), c("a", 0.1), c(None, 5.0)]
    # a and b both have 2 votes: the tie goes to the cluster seen first; its best-scored member
    assert majority(pool) == 0
    # weighted: a = 1.0, b = 0.5
    assert weighted_vote(pool) == 0
    assert weighted_vote([c("a", 0.3), c("b", 0.5), c("a", 0.1)]) == 1
    assert best_of_n(pool) == 4  # highest score, even without an extractable answer
    assert best_of_n([c("a", None), c("b", 0.1)]) == 1  # an unscored candidate is never preferred


def test_borda_weights_ranks_by_self_certainty_and_p_zero_is_majority() -> None:
    # certainty order: x(0.9) rank 1, y(0.8) rank 2, y(0.7) rank 3, z(0.1) rank 4; N = 4
    pool = [c("x", certainty=0.9), c("y", certainty=0.8), c("y", certainty=0.7), c("z", certainty=0.1)]
    assert borda(pool, p=0.0) == majority(pool) == 1  # y has two votes
    # p = 1: x gets 4; y gets 3 + 2 = 5 -> y
    assert pool[borda(pool, p=1.0)]["answer"] == "y"
    # p = 3: x gets 64; y gets 27 + 8 = 35 -> x
    assert pool[borda(pool, p=3.0)]["answer"] == "x"


def test_step_aggregations() -> None:
    steps = [0.9, 0.5, 0.8]
    assert aggregate_steps(steps, "min") == 0.5 and aggregate_steps(steps, "last") == 0.8
    assert aggregate_steps(steps, "product") == pytest.approx(0.36) and aggregate_steps(steps, "mean") == pytest.approx(2.2 / 3)
    pool = [{"completion": "1", "step_scores": [0.9, 0.1]}, {"completion": "2", "step_scores": [0.6, 0.6]}]
    assert best_of_n(pool, "min") == 1 and best_of_n(pool, "last") == 1 and best_of_n(pool, "mean") == 1
    assert best_of_n([{"completion": "1", "step_scores": [0.9, 0.9]}, {"completion": "2", "step_scores": [0.95, 0.5]}], "product") == 0


def test_self_certainty_is_token_mean_kl_from_uniform() -> None:
    uniform = torch.log_softmax(torch.zeros(3, 5, dtype=torch.float64), -1)
    assert self_certainty(uniform) == pytest.approx(0.0, abs=1e-12)  # KL(U || U) = 0
    peaked = torch.log(torch.tensor([[0.7, 0.1, 0.1, 0.1]]))
    expected = -math.log(4) - (math.log(0.7) + 3 * math.log(0.1)) / 4
    assert self_certainty(peaked) == pytest.approx(expected)
    assert self_certainty(peaked) > 0


def test_equivalent_answers_share_a_cluster() -> None:
    ids = cluster_answers(["The answer is \\boxed{\\frac{1}{2}}", "so 0.5", "It is 1/2.", "The answer is 2", "no idea"])
    assert ids[0] == ids[1] == ids[2] and ids[3] not in (ids[0], None) and ids[4] is None


def test_curves_by_hand_and_the_oracle() -> None:
    prompts = [{"candidates": [c("a", 1.0, correct=True), c("b", 0.0), c("b", 0.0)]},
               {"candidates": [c("a", 0.0), c("a", 0.0), c("b", 1.0, correct=True)]}]
    result = scaling_curves(prompts, ["bon", "majority", "pass@k"], [1, 3], draws=30, seed=0)
    assert result["curves"]["bon"][3] == 1.0 and result["curves"]["majority"][3] == 0.0
    assert result["curves"]["pass@k"][1] == pytest.approx(1 / 3) and result["curves"]["pass@k"][3] == 1.0
    low, high = result["bands"]["bon"][1]
    assert 0.0 <= low <= result["curves"]["bon"][1] <= high <= 1.0
    assert result["tokens"]["bon"][3] == 3 * result["tokens"]["bon"][1]


def test_the_cli_on_a_candidates_file(tmp_path: Path) -> None:
    rows = [{"prompt": "What is 2+2?", "reference": "4", "completions": ["4", "The answer is 4.", "5", "5", "5"],
             "scores": [0.9, 0.8, 0.1, 0.2, 0.3]},
            {"prompt": "What is 3+3?", "reference": "6", "completions": ["6", "7", "6.0", "8", "9"], "scores": [0.5, 0.8, 0.4, 0.1, 0.1]}]
    path = tmp_path / "candidates.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = subprocess.run([sys.executable, "-m", "payoff", "select", str(path), "--method", "bon,majority,weighted_vote,pass@k,maj@k",
                           "--n", "1,5", "--report", str(tmp_path / "r"), "--workers", "0"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    curves = report["curves"]
    assert curves["majority"]["5"] == 0.5  # 5 wins prompt 1 (3 votes); 6 and 6.0 win prompt 2 as one cluster
    assert curves["weighted_vote"]["5"] == 1.0  # 4: 1.7 vs 5: 0.6; 6: 0.9 vs 7: 0.8
    assert curves["bon"]["5"] == 0.5 and curves["pass@k"]["5"] == 1.0
    assert set(report["tokens"]) == set(curves) and (tmp_path / "r" / "scaling.png").stat().st_size > 0
