"""Episodes through every door, run as a user runs them: `payoff score`, `rescore` and
`eval overopt` as real subprocesses on real files, and a real `payoff serve` on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.episode.cases import CALC, MALFORMED, say
from tests.serve.helpers import running_server

PAYOFF = [sys.executable, "-m", "payoff"]
WRONG = [*CALC[:-1], say("assistant", "The answer is \\boxed{42}")]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PAYOFF, *args], capture_output=True, text=True, timeout=300)


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_payoff_score_reads_episodes_and_reports_each_malformed_one_on_its_line(tmp_path: Path) -> None:
    rows = [{"messages": CALC, "answer": "43"}, {"messages": WRONG, "answer": "43"},
            {"messages": CALC, "completion": "The answer is \\boxed{43}", "answer": "43"},
            {"completion": "\\boxed{43}", "answer": "43"}]
    rows += [{"messages": messages, "answer": "43"} for messages, _ in MALFORMED.values()]
    rows.append({"messages": CALC, "completion": "something else", "answer": "43"})
    out = tmp_path / "out.jsonl"
    done = _run("score", str(_write(tmp_path / "in.jsonl", rows)), "--reward", "math", "--out", str(out), "--workers", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(scored) == len(rows)
    assert [r["reward"] for r in scored[:4]] == [1.0, 0.0, 1.0, 1.0]
    for row, (_, phrase) in zip(scored[4:], MALFORMED.values()):
        assert row["status"] == "error" and phrase in row["info"]["error"], (phrase, row)
    assert "is not the final assistant text" in scored[-1]["info"]["error"]


def test_payoff_rescore_reads_episodes(tmp_path: Path) -> None:
    rows = [{"messages": CALC, "reference": "43", "reward": 1.0}, {"messages": WRONG, "reference": "43", "reward": 0.0},
            {"completion": "\\boxed{43}", "reference": "43", "reward": 1.0}]
    done = _run("rescore", str(_write(tmp_path / "r.jsonl", rows)), "--variant", "math", "--workers", "1", "--report", str(tmp_path / "rep"))
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["rollouts"] == 3
    pair = report["pairs"][0]
    assert (pair["a"], pair["b"], pair["kappa"]) == ("stored", "math", 1.0)


def test_payoff_eval_overopt_reads_episodes(tmp_path: Path) -> None:
    rows = [{"group": "g", "messages": CALC, "reference": "43"}, {"group": "g", "messages": WRONG, "reference": "43"}]
    done = _run("eval", "overopt", str(_write(tmp_path / "c.jsonl", rows)), "--reward", "math", "--gold", "math", "--workers", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    headline = json.loads(done.stdout.strip().splitlines()[-1])
    assert headline["overall"] == 1.0  # best of 2 by the proxy is the right episode, by its final answer


def test_the_server_scores_episodes_and_names_a_malformed_one() -> None:
    with running_server("--reward", "math", "--workers", "1") as (url, _):
        good = httpx.post(f"{url}/v1/score", json={"samples": [{"messages": CALC, "answer": "43"}, {"messages": WRONG, "answer": "43"},
                                                               {"completion": "\\boxed{43}", "answer": "43"}]}, timeout=60)
        assert good.status_code == 200, good.text
        assert [o["reward"] for o in good.json()["outcomes"]] == [1.0, 0.0, 1.0]
        for messages, phrase in list(MALFORMED.values())[:6] + [MALFORMED["arguments not JSON"], MALFORMED["tool without its call"]]:
            bad = httpx.post(f"{url}/v1/score", json={"samples": [{"completion": "x"}, {"messages": messages}]}, timeout=60)
            assert bad.status_code == 422 and bad.json()["error"].startswith("samples.1: ") and phrase in bad.json()["error"], (phrase, bad.text)
