"""Reward-guided step search: beam, DVTS and particle filtering on a scripted policy (checked by
hand), the resampling weights by formula, and the real thing on a tiny random Llama."""

from __future__ import annotations

import pytest

from payoff.core import Outcome, reward
from payoff.select.search import Search, beam, dvts, particle, policy_search, resample_weights


def scripted(values: list[str]) -> Search:
    """A test double for the policy (the point is the search's bookkeeping, which needs known
    continuations): the k-th generated step is values[k]; "!" marks a step that ends the
    solution. The scorer reads the last step's number, as a PRM's last-step score."""
    queue = list(values)

    def generate(prefixes: list[str]) -> list[tuple[str, bool, int]]:
        out = []
        for _ in prefixes:
            step = queue.pop(0)
            out.append((step.rstrip("!"), step.endswith("!"), 1))
        return out

    def score(texts: list[str]) -> list[float | None]:
        return [float(t.split("\n\n")[-1]) for t in texts]

    return Search(generate, score)


def test_beam_keeps_the_best_n_over_m_and_gives_each_m_children() -> None:
    search = scripted(["0.1", "0.9", "0.5", "0.3",   # round 1: keep 0.9 and 0.5
                       "0.2!", "0.8", "0.6", "0.4",  # round 2: one finishes; keep 0.8 (from 0.9) and 0.6 (from 0.5)
                       "0.95!", "0.7!", "0.15!", "0.3!"])  # round 3: 5 finished >= 4: stop
    best = beam(search, n=4, width=2, max_steps=5)
    assert best.steps == ["0.9", "0.8", "0.95"] and best.done
    assert search.tokens == 12


def test_dvts_grows_independent_subtrees() -> None:
    search = scripted(["0.1", "0.4", "0.8", "0.6",   # tree 0 keeps 0.4, tree 1 keeps 0.8
                       "0.3!", "0.2", "0.5", "0.9!"])  # tree 0's best child ends (0.3!), tree 1's best (0.9!) too
    best = dvts(search, n=4, width=2, max_steps=4)
    assert best.steps == ["0.8", "0.9"] and search.tokens == 8


def test_resampling_weights_are_the_softmax_of_the_logits() -> None:
    w = resample_weights([0.9, 0.1])
    assert w[0] / w[1] == pytest.approx(81.0, rel=1e-6)  # (0.9/0.1) / (0.1/0.9)
    assert resample_weights([0.5, 0.5, 0.5]) == pytest.approx([1 / 3] * 3)
    hot = resample_weights([0.9, 0.1], temperature=2.0)
    assert hot[0] / hot[1] == pytest.approx(9.0, rel=1e-6)  # the logit ratio halved
    assert resample_weights([float("-inf"), 0.5])[0] < 1e-5  # an unscored particle is all but dropped


def test_particles_follow_the_weights_and_finish() -> None:
    # Round 1: 3 particles score 0.999, 0.001, 0.001: resampling keeps (almost surely) only the first.
    search = scripted(["0.999", "0.001", "0.001", "0.9!", "0.8!", "0.7!"])
    best = particle(search, n=3, max_steps=3, seed=0)
    assert best.steps[0] == "0.999" and best.done and best.score == 0.9


@reward(name="toy_step_vowels", register=False)
def vowel_steps(sample) -> Outcome:
    steps = [s for s in sample.completion.split("\n\n") if s.strip()] or [""]
    scores = [sum(c in "aeiou" for c in s) / max(len(s), 1) for s in steps]
    return Outcome.ok(scores[-1], step_scores=scores)


@pytest.mark.parametrize("method", ["beam", "dvts", "particle"])
def test_search_on_a_real_tiny_policy(method: str) -> None:
    import torch

    from payoff.select.search import run_search
    from tests.rl.toy import tiny_model, tokenizer

    torch.manual_seed(0)
    search = policy_search(tiny_model().eval(), tokenizer(), "Write a few words.", vowel_steps, step_tokens=6, workers=0)
    best = run_search(method, search, n=4, width=2, max_steps=3)
    assert best.steps and 0.0 <= best.score <= 1.0
    assert 0 < search.tokens <= 4 * 3 * 6  # every sampled token is counted, never more than the cap allows


def test_the_cli_runs_search_beside_sampling_methods(tmp_path) -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    from tests.rl.toy import save_tiny

    model = save_tiny(tmp_path / "tiny")
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps({"prompt": f"Write word {i}.", "reference": None}) + "\n" for i in range(2)))
    scorer = f"{Path(__file__).resolve()}:vowel_steps"
    args = [sys.executable, "-m", "payoff", "select", str(tasks), "--policy", str(model), "--method", "bon,beam,particle",
            "--reward", scorer, "--gold", scorer,
            "--gold-threshold", "0.2", "--n", "2", "--samples", "2", "--max-new-tokens", "6", "--step-tokens", "4",
            "--max-steps", "2", "--width", "2", "--workers", "0", "--report", str(tmp_path / "report")]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert set(report["curves"]) == {"bon", "beam", "particle"}
    assert all(0.0 <= v <= 1.0 for curve in report["curves"].values() for v in curve.values())
    assert all(report["tokens"][m]["2"] > 0 for m in ("beam", "particle"))
    assert (tmp_path / "report" / "scaling.png").exists()
    refused = subprocess.run([sys.executable, "-m", "payoff", "select", str(tasks), "--method", "beam"], capture_output=True,
                             text=True, timeout=120)
    assert refused.returncode != 0 and "--policy" in refused.stderr
