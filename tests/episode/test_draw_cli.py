"""`payoff rm sample --env` and `payoff select --env` as a user runs them: real subprocesses, the
embedded SmolLM2 as the policy (two tasks, short turns), the real calculator environment; the
episodes they write go on through `rm pairs`, `score` and `monitor`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

PAYOFF = [sys.executable, "-m", "payoff"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PAYOFF, *args], capture_output=True, text=True, timeout=600)


def _tasks(tmp_path: Path) -> Path:
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"What is {a} + {b}?", "reference": str(a + b)}) + "\n" for a, b in ((2, 3), (10, 4))))
    return path


def test_rm_sample_writes_scored_episodes_that_pairs_score_and_monitor_read(tmp_path: Path) -> None:
    out = tmp_path / "episodes.jsonl"
    done = _run("rm", "sample", str(_tasks(tmp_path)), "--env", "calculator", "--env-set", "max_turns=2", "--env-set", "max_tokens=400",
                "--n", "2", "--max-new-tokens", "24", "--workers", "0", "-o", str(out))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["episodes"] == 4 and summary["prompts"] == 2
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 and [r["group"] for r in rows] == [0, 0, 1, 1]
    for row in rows:
        assert row["status"] in ("ok", "error")
        if row["status"] == "ok":
            assert row["messages"][0]["role"] == "system" and row["messages"][1] == {"role": "user", "content": row["prompt"][1]["content"]}
            assert row["completion"] == [m for m in row["messages"] if m["role"] == "assistant"][-1]["content"] or ""
            assert row["reward"] in (0.0, 1.0) and 1 <= row["meta"]["turns"] <= 2
        else:
            assert row["info"]["error"]
        assert row["meta"]["ended"] and row["meta"]["tools"][0]["function"]["name"] == "calculator"

    pairs = tmp_path / "pairs.jsonl"
    done = _run("rm", "pairs", str(out), "-o", str(pairs))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 4

    done = _run("score", str(out), "--reward", "math", "--workers", "0")
    assert done.returncode == 0, done.stderr

    done = _run("monitor", str(out), "--report", str(tmp_path / "mon"))
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "mon" / "report.json").read_text())
    text = json.dumps(metrics)
    assert "turns_mean" in text and "tool_calls_mean" in text and "tool_error_rate" in text


def test_select_draws_episodes_and_picks_among_them(tmp_path: Path) -> None:
    done = _run("select", str(_tasks(tmp_path)), "--policy", "smollm2-135m-instruct", "--env", "calculator",
                "--env-set", "max_turns=2", "--samples", "2", "--n", "1,2", "--max-new-tokens", "24", "-m", "bon,majority,pass@k",
                "--workers", "0", "--report", str(tmp_path / "rep"))
    assert done.returncode == 0, done.stderr
    curves = json.loads(done.stdout)["curves"]
    assert set(curves) == {"bon", "majority", "pass@k"} and all(0.0 <= v <= 1.0 for c in curves.values() for v in c.values())
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["reward"] == "episode outcome (math)" and report["env"]["max_turns"] == 2
    assert sum(report["statuses"].values()) >= 4


def test_episode_options_are_usage_errors_when_wrong(tmp_path: Path) -> None:
    tasks = str(_tasks(tmp_path))
    for args, said in (
        (("rm", "sample", tasks, "--env", "nope", "-o", str(tmp_path / "o.jsonl")), "registered: calculator"),
        (("rm", "sample", tasks, "--env", "calculator", "--env-set", "max_turns=0", "-o", str(tmp_path / "o.jsonl")), "max_turns"),
        (("rm", "sample", tasks, "--env", "calculator", "--env-set", "turns=2", "-o", str(tmp_path / "o.jsonl")), "turns"),
        (("rm", "sample", tasks, "--env-set", "max_turns=2", "-o", str(tmp_path / "o.jsonl")), "give --env too"),
        (("select", tasks, "--env", "calculator"), "give --policy"),
        (("select", tasks, "--env", "calculator", "--policy", "x", "-m", "borda"), "borda"),
    ):
        done = _run(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert said.replace(" ", "") in re.sub(r"[\s│╭╮╰╯─]", "", done.stderr), (args, done.stderr)  # rich wraps its box
