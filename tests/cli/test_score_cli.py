"""`payoff score` run as a user runs it: a real subprocess on real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PAYOFF = [sys.executable, "-m", "payoff"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PAYOFF, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_every_line_comes_back_and_bad_lines_are_reported(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        "\n".join(
            [
                json.dumps({"prompt": "p", "completion": "<think>t</think> 42", "answer": "42", "meta": {"id": 1}}),
                "{not json",
                json.dumps({"prompt": "no completion"}),
                "",
                json.dumps({"completion": "<think>t</think> 41", "ground_truth": "42"}),
                json.dumps({"completion": "whatever"}),
            ]
        )
        + "\n"
    )
    out = tmp_path / "sub" / "out.jsonl"
    result = run("score", str(source), "--reward", "exact_match", "--reward", "think_format:0.5", "--out", str(out), "--workers", "2")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5  # the blank line is skipped and said so; every other line comes back
    assert rows[0]["reward"] == 1.5 and rows[0]["meta"] == {"id": 1} and rows[0]["status"] == "ok"
    assert rows[0]["components"]["think_format/answer_nonempty"] == 1.0
    assert rows[1] == {"line": 2, "raw": "{not json", "reward": None, "status": "error", "components": {},
                       "info": {"error": "line 2: not valid JSON (Expecting property name enclosed in double quotes at column 2)"}}
    assert rows[2]["line"] == 3 and "missing field 'completion'" in rows[2]["info"]["error"]
    assert rows[3]["reward"] == 0.5
    assert rows[4]["status"] == "abstain"
    assert "line 2: not valid JSON" in result.stderr and "1 blank line(s) skipped" in result.stderr
    assert "exact_match" in result.stdout and "abstain" in result.stdout  # the summary table


def test_user_reward_from_a_file_and_summary_json(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text("def has_x(sample):\n    return float('x' in sample.completion)\n")
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"completion": c}) + "\n" for c in ["x", "y", "xx"]))
    result = run("score", str(source), "-r", f"{tmp_path / 'mine.py'}:has_x", "--summary-json", str(tmp_path / "s.json"), "-w", "1")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (tmp_path / "in.scored.jsonl").read_text().splitlines()]
    assert [r["reward"] for r in rows] == [1.0, 0.0, 1.0]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["statuses"]["ok"] == 3 and abs(summary["score_mean"] - 2 / 3) < 1e-9


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"completion": "x"}) + "\n")
    unknown = run("score", str(source), "--reward", "nope")
    assert unknown.returncode == 2 and "no reward named 'nope'" in unknown.stderr
    assert run("score", str(tmp_path / "missing.jsonl"), "--reward", "exact_match").returncode == 2
    assert run("score", str(source)).returncode == 2  # --reward is required


def test_rewards_and_doctor_commands() -> None:
    listed = run("rewards")
    assert listed.returncode == 0 and "exact_match" in listed.stdout and "think_format" in listed.stdout
    doctor = run("doctor")
    assert doctor.returncode == 0 and "worker containment" in doctor.stdout
