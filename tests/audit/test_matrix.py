"""The hack matrix as a CI gate: every built-in verifiable reward scores 0 exploit in every cell
that applies to it (a small fixed task set), every n/a cell says why, and `payoff audit --report`
writes matrix.json (the schema docs/audit.md gives), matrix.md and matrix.png."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from payoff.audit import HACKS, audit
from payoff.audit.matrix import Matrix, matrix_of
from payoff.registry import get_reward
from tests.audit.test_audit import CHOICE_TASKS, CODE_TASKS, MATH_TASKS, SQL_TASKS, TEXT_TASKS
from tests.audit.test_hacks import TASKS

ROOT = Path(__file__).resolve().parents[2]
# Each built-in verifiable reward on its own small fixed task set.
GATED = [("math", MATH_TASKS[:3]), ("multiple_choice", CHOICE_TASKS), ("exact_match", TEXT_TASKS),
         ("code", CODE_TASKS + [TASKS["code_cases"]]), ("sql", SQL_TASKS), ("gated_turns", MATH_TASKS[:2]),
         ("try_again", MATH_TASKS[:2])]
CELL_KEYS = {"hack", "kind", "reward", "probes", "exploits", "rate", "status", "why", "example"}


def _check_schema(data: dict) -> None:
    assert set(data) == {"cells", "false_negatives"}
    for cell in data["cells"]:
        assert set(cell) == CELL_KEYS and cell["status"] in ("pass", "fail", "n/a")
        assert isinstance(cell["probes"], int) and isinstance(cell["exploits"], int) and isinstance(cell["rate"], float)
        if cell["status"] == "n/a":
            assert cell["why"] and cell["probes"] == 0 and cell["example"] is None
        if cell["status"] == "fail":
            assert {"prompt", "completion", "score"} <= set(cell["example"])
    for figures in data["false_negatives"].values():
        assert set(figures) == {"n", "missed", "rate"}


def test_every_builtin_verifiable_reward_scores_zero_in_every_cell(tmp_path: Path) -> None:
    matrix = Matrix()
    for name, tasks in GATED:
        report = audit(get_reward(name), tasks, workers=2)
        matrix = matrix.merge(matrix_of(report, tasks))
    by_reward: dict[str, list] = {}
    for cell in matrix.cells:
        by_reward.setdefault(cell.reward, []).append(cell)
    assert set(by_reward) == {name for name, _ in GATED}
    for name, cells in by_reward.items():
        assert [c.hack for c in cells] == [h.name for h in HACKS]  # every class, in registry order
        failing = [(c.hack, c.example) for c in cells if c.status == "fail"]
        assert not failing, (name, failing)
        assert sum(c.status == "pass" for c in cells) >= 8, name  # the gate ran, not only n/a
    assert {c.hack for c in by_reward["code"] if c.status == "pass"} >= {"raise_on_empty", "exit_in_tests", "thread_bomb"}
    assert {c.hack for c in by_reward["math"] if c.status == "pass"} >= {"eval_sink", "latex_macro", "step_spam", "tool_loop"}
    assert matrix.false_negatives["math"]["rate"] == 0.0
    paths = matrix.write(tmp_path)
    _check_schema(json.loads(paths[0].read_text()))
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| eval_sink |" in paths[1].read_text()


def test_cli_report_writes_the_matrix_with_worked_examples(tmp_path: Path) -> None:
    data = tmp_path / "tasks.jsonl"
    data.write_text("".join(json.dumps(t) + "\n" for t in MATH_TASKS[:2]))
    done = subprocess.run([sys.executable, "-m", "payoff", "audit", str(data), "--reward",
                           f"{ROOT}/examples/naive_rewards.py:substring_match", "--report", str(tmp_path / "r"), "-w", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    data = json.loads((tmp_path / "r" / "matrix.json").read_text())
    _check_schema(data)
    cells = {c["hack"]: c for c in data["cells"]}
    assert cells["answer_spam"]["status"] == "fail" and cells["answer_spam"]["example"]["prompt"] == MATH_TASKS[0]["prompt"]
    assert cells["reference_quoted"]["status"] == "fail"
    assert cells["harness:always_equal"]["status"] == "n/a" and "code" in cells["harness:always_equal"]["why"]
    assert cells["read_hidden_answer"]["status"] == "n/a" and "environment" in cells["read_hidden_answer"]["why"]
    markdown = (tmp_path / "r" / "matrix.md").read_text()
    assert "### answer_spam × substring_match" in markdown and "## Why cells are n/a" in markdown
    assert (tmp_path / "r" / "matrix.png").stat().st_size > 1000
