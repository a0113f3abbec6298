"""Pairs from verifier-scored samples: correct x incorrect within a prompt, errors never used as
the rejected side, margins, ties, per-prompt balance; and `payoff rm pairs` on a real file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from payoff.rm.pairs import build_pairs


def rows() -> list[dict]:
    return [
        {"prompt": "p1", "completion": "right", "reward": 1.0, "status": "ok", "group": 1},
        {"prompt": "p1", "completion": "wrong", "reward": 0.0, "status": "ok", "group": 1},
        {"prompt": "p1", "completion": "also wrong", "reward": 0.0, "status": "ok", "group": 1},
        {"prompt": "p1", "completion": "crashed", "reward": None, "status": "error", "group": 1},
        {"prompt": "p2", "completion": "a", "reward": 0.5, "status": "ok"},  # grouped by prompt
        {"prompt": "p2", "completion": "b", "reward": 0.2, "status": "ok"},
        {"prompt": "p2", "completion": "c", "reward": 0.2, "status": "ok"},
        {"prompt": "p3", "completion": "x", "reward": 1.0, "status": "timeout"},
    ]


def test_correct_against_incorrect_within_each_group() -> None:
    pairs, report = build_pairs(rows())
    assert sorted((p["chosen"], p["rejected"]) for p in pairs) == [("right", "also wrong"), ("right", "wrong")]
    assert report.left_out == {"error": 1, "timeout": 1} and report.groups == 2 and report.groups_with_pairs == 1
    assert all("crashed" not in (p["chosen"], p["rejected"]) for p in pairs)  # an error is not a wrong answer


def test_margin_mode_with_margins_and_ties() -> None:
    pairs, report = build_pairs(rows(), mode="margin", min_margin=0.25, keep_margin=True, ties=True)
    got = {(p["chosen"], p["rejected"]): p for p in pairs}
    assert got[("a", "b")]["margin"] == pytest.approx(0.3) and got[("right", "wrong")]["margin"] == 1.0
    tie = next(p for p in pairs if p.get("tie"))
    assert {tie["chosen"], tie["rejected"]} in ({"b", "c"}, {"wrong", "also wrong"})
    assert report.ties == 2


def test_max_per_prompt_balances_and_is_seeded() -> None:
    many = [{"prompt": "p", "completion": f"good {i}", "reward": 1.0} for i in range(4)] + \
           [{"prompt": "p", "completion": f"bad {i}", "reward": 0.0} for i in range(4)]
    first, _ = build_pairs(many, max_per_prompt=3, seed=1)
    again, _ = build_pairs(many, max_per_prompt=3, seed=1)
    assert len(first) == 3 and first == again
    assert len(build_pairs(many)[0]) == 16


def test_the_cli_writes_trl_pairs_and_reports(tmp_path: Path) -> None:
    scored = tmp_path / "scored.jsonl"
    scored.write_text("".join(json.dumps(r) + "\n" for r in rows()) + "{broken\n")
    out = tmp_path / "pairs.jsonl"
    done = subprocess.run([sys.executable, "-m", "payoff", "rm", "pairs", str(scored), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["pairs"] == 2 and report["left_out"]["unreadable line"] == 1
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert set(written[0]) >= {"prompt", "chosen", "rejected", "meta"}
    from payoff.tasks.preferences import read_pairs

    assert len(read_pairs(out)[0]) == 2  # what `payoff rm pairs` writes, `payoff rm train` reads


def test_pairs_never_cross_prompts_within_a_group() -> None:
    # One group whose rows carry two prompts (a merged file, a reused group id): each answer is
    # compared only with answers to its own prompt, and the odd rows are reported.
    mixed = [{"prompt": "2+2?", "completion": "4", "reward": 1.0, "group": 7},
             {"prompt": "2+2?", "completion": "5", "reward": 0.0, "group": 7},
             {"prompt": "3+3?", "completion": "6", "reward": 1.0, "group": 7},
             {"prompt": "3+3?", "completion": "7", "reward": 0.0, "group": 7},
             {"prompt": "3+3?", "completion": "9", "reward": 0.0, "group": 7}]
    pairs, report = build_pairs(mixed)
    answers = {"2+2?": {"4", "5"}, "3+3?": {"6", "7", "9"}}
    assert all({p["chosen"], p["rejected"]} <= answers[p["prompt"]] for p in pairs)
    assert sorted((p["prompt"], p["chosen"], p["rejected"]) for p in pairs) == \
        [("2+2?", "4", "5"), ("3+3?", "6", "7"), ("3+3?", "6", "9")]
    assert report.off_prompt == 3 and report.off_prompt_rows == ["row 3", "row 4", "row 5"]
    assert build_pairs(mixed, where=[f"line {n}" for n in (2, 3, 5, 8, 9)])[1].off_prompt_rows == ["line 5", "line 8", "line 9"]
    assert build_pairs(rows())[1].off_prompt == 0
