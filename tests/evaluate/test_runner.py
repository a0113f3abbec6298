"""`payoff eval` end to end: suites scored through the engine with real rewards, the CLI's report
folder, the procedural benchmark, rescoring and over-optimisation."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payoff.evaluate.bench import bench_items, score_bench
from payoff.evaluate.overoptimization import best_of_n_weights, curves, empirical_kl, fit_gain, kl_best_of_n
from payoff.evaluate.rescore import cohen_kappa, group_advantages, spearman
from payoff.evaluate.runner import SuiteDataError, run_suite
from payoff.registry import get_reward

HERE = Path(__file__).resolve().parent
LENGTH = get_reward(f"{HERE / 'scorers.py'}:length")


def test_pairs_through_the_engine_expose_length_bias() -> None:
    rows = [{"prompt": "q", "chosen": "a long good answer", "rejected": "bad", "subset": "s1"},
            {"prompt": "q", "chosen": "ok", "rejected": "a long rambling wrong answer", "subset": "s2"}]
    report = run_suite("pairs", rows, LENGTH, workers=1)
    assert report["overall"] == 0.5 and report["subsets"] == {"s1": 1.0, "s2": 0.0}
    assert report["bias"]["accuracy_chosen_longer"] == 1.0 and report["bias"]["accuracy_chosen_shorter"] == 0.0
    assert report["bias"]["length_correlation"] == pytest.approx(1.0)


def test_a_reward_that_abstains_is_counted_not_scored() -> None:
    says = get_reward(f"{HERE / 'scorers.py'}:says_yes")
    rows = [{"prompt": "q", "chosen": "yes", "rejected": "no"}, {"prompt": "q", "chosen": "maybe", "rejected": "no"}]
    report = run_suite("pairs", rows, says, workers=0)
    assert report["overall"] == 0.5 and report["unscored"] == 1 and report["statuses"] == {"ok": 3, "abstain": 1}


def test_processbench_prefixes_with_the_math_verifier() -> None:
    # The math verifier on each prefix: a prefix whose running result is right scores 1.
    rows = [{"prompt": "What is 2 + 3 + 4?", "reference": "9", "steps": ["2 + 3 = 5", "5 + 4 = 9"], "label": -1},
            {"prompt": "What is 2 + 3 + 4?", "reference": "9", "steps": ["2 + 3 = 6", "6 + 4 = 10"], "label": 0}]
    report = run_suite("processbench", rows, get_reward("math"), workers=0)
    # the verifier sees "5" as wrong (the final answer is 9): it flags step 0 of the right solution
    assert report["details"]["all"]["error_accuracy"] == 1.0 and report["details"]["all"]["correct_accuracy"] == 0.0
    with pytest.raises(SuiteDataError, match="row 0: 'label'"):
        run_suite("processbench", [{"prompt": "p", "steps": ["a"], "label": 5}], LENGTH, workers=0)


def test_schema_errors_name_the_row_and_field() -> None:
    with pytest.raises(SuiteDataError, match="row 1: no field 'rejected'"):
        run_suite("pairs", [{"chosen": "a", "rejected": "b"}, {"chosen": "a"}], LENGTH, workers=0)
    with pytest.raises(SuiteDataError, match="must hold 3 answers"):
        run_suite("rmbench", [{"chosen": ["a", "b"], "rejected": ["c", "d", "e"]}], LENGTH, workers=0)


def test_cli_writes_the_report_folder(tmp_path: Path) -> None:
    data = tmp_path / "rb.jsonl"
    rows = [{"prompt": "q", "chosen": "longer answer", "rejected": "short", "subset": "alpacaeval-easy"},
            {"prompt": "q", "chosen": "x", "rejected": "much longer", "subset": "math-prm"}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    command = [sys.executable, "-m", "payoff", "eval", "rewardbench", str(data), "--reward", f"{HERE / 'scorers.py'}:length",
               "--report", str(tmp_path / "report")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["sections"] == {"Chat": 1.0, "Reasoning": 0.0} and report["overall"] == 0.5
    assert report["subsets"] == {"alpacaeval-easy": 1.0, "math-prm": 0.0}
    for name in ("report.md", "report.html", "calibration.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    assert "overall" in done.stderr  # the terminal table


def test_bench_items_are_seeded_and_the_verifiers_are_not_fooled() -> None:
    assert bench_items(seed=3, per_family=4) == bench_items(seed=3, per_family=4)
    assert bench_items(seed=3, per_family=4) != bench_items(seed=4, per_family=4)
    items = bench_items(seed=0, per_family=6, families=("math",))
    math_reward = get_reward("math")
    scores = [math_reward({"prompt": i["prompt"], "completion": i["completion"], "reference": i["reference"]}).score for i in items]
    report = score_bench(items, scores)
    assert report["overall"] == 1.0
    lengths = score_bench(items, [float(len(i["completion"]) > 60) for i in items])
    assert lengths["types"]["math/length_inflated"]["false_positive_rate"] == 1.0  # a length reward is fooled


def test_kappa_spearman_and_advantage_signs_by_hand() -> None:
    assert cohen_kappa([True, True, False, False], [True, True, False, False]) == 1.0
    # p_o = 0.5, p_e = 0.5 * 0.5 + 0.5 * 0.5 = 0.5 -> kappa 0
    assert cohen_kappa([True, True, False, False], [True, False, True, False]) == 0.0
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 2, 3], [3, 2, 2, 1]) == pytest.approx(-1.0)  # ties share their rank
    adv = group_advantages([1.0, 0.0, 1.0, 1.0], ["a", "a", "b", "b"])
    assert adv[0] > 0 > adv[1] and adv[2] == adv[3] == 0.0


def test_rescore_cli_on_stored_rollouts(tmp_path: Path) -> None:
    rollouts = tmp_path / "samples.jsonl"
    rows = [{"step": 1, "prompt": "What is 2+2?", "completion": c, "reference": "4", "reward": r}
            for c, r in [("4", 1.0), ("The answer is 4 because two plus two is four", 1.0), ("5", 0.0), ("I am not sure at all", 0.0)]]
    rollouts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = subprocess.run([sys.executable, "-m", "payoff", "rescore", str(rollouts), "--variant", "math",
                           "--variant", str(HERE / "scorers.py") + ":length", "--threshold", "0.5", "--report", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    by_pair = {(p["a"], p["b"]): p for p in report["pairs"]}
    assert by_pair[("stored", "math")]["kappa"] == 1.0 and by_pair[("stored", "math")]["advantage_sign_changes"] == 0.0
    versus_length = by_pair[("math", str(HERE / "scorers.py") + ":length")]
    assert versus_length["advantage_sign_changes"] == 1.0 and versus_length["disagreements"]
    assert (tmp_path / "r" / "report.md").read_text().count("|") > 10


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=7), st.data())
def test_best_of_n_weights_match_brute_force_over_subsets(proxy: list[int], data: st.DataObject) -> None:
    n = data.draw(st.integers(1, len(proxy)))
    weights = best_of_n_weights(proxy, n)
    brute = [0.0] * len(proxy)
    subsets = list(itertools.combinations(range(len(proxy)), n))
    for subset in subsets:
        top = max(proxy[i] for i in subset)
        winners = [i for i in subset if proxy[i] == top]
        for i in winners:  # equal scores share: a uniform tie-break among the subset's best
            brute[i] += 1 / len(winners) / len(subsets)
    # payoff shares a run of equal scores over the whole pool's run, which has the same total
    # mass per score value; compare per value
    for value in set(proxy):
        members = [i for i, p in enumerate(proxy) if p == value]
        assert sum(weights[i] for i in members) == pytest.approx(sum(brute[i] for i in members), abs=1e-12)


def test_kl_formula_fit_and_empirical_kl() -> None:
    assert kl_best_of_n(1) == 0.0 and kl_best_of_n(4) == pytest.approx(math.log(4) - 0.75)
    d = [0.5, 1.0, 1.5, 2.0]
    alpha, beta = fit_gain(d, [x * (0.7 - 0.2 * x) for x in d])
    assert alpha == pytest.approx(0.7) and beta == pytest.approx(0.2)
    distinct = list(range(64))
    assert empirical_kl(distinct, 8) == pytest.approx(kl_best_of_n(8), abs=0.02)  # many distinct scores: the formula
    assert empirical_kl([0, 1] * 32, 8) < kl_best_of_n(8)  # ties: less KL than the formula
    rows = [{"group": g, "proxy": p, "gold": float(p % 3 == 0)} for g in range(3) for p in range(16)]
    result = curves(rows)
    assert [p["n"] for p in result["points"]] == [1, 2, 4, 8, 16] and "gold_fit" in result
    assert result["points"][-1]["proxy"] == 15.0  # best of all 16 by proxy
