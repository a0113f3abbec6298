"""`payoff score` run as a user runs it: a real subprocess on real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert len(rows) == 6  # one output line per input line, the blank one included
    blank = rows.pop(3)
    assert blank["line"] == 4 and blank["status"] == "error" and blank["info"]["error"] == "line 4: blank line"
    assert rows[0]["reward"] == 1.5 and rows[0]["meta"] == {"id": 1} and rows[0]["status"] == "ok"
    assert rows[0]["info"]["line"] == 1
    assert rows[0]["components"]["think_format/answer_nonempty"] == 1.0
    assert rows[1] == {"line": 2, "raw": "{not json", "reward": None, "status": "error", "components": {},
                       "info": {"error": "line 2: not valid JSON (Expecting property name enclosed in double quotes at column 2)", "line": 2}}
    assert rows[2]["line"] == 3 and "missing field 'completion'" in rows[2]["info"]["error"]
    assert rows[3]["reward"] == 0.5
    assert rows[4]["status"] == "abstain"
    assert "line 2: not valid JSON" in result.stderr and "1 blank line(s) written back as errors" in result.stderr
    assert "exact_match" in result.stdout and "abstain" in result.stdout  # the summary, as JSON on stdout


def test_user_reward_from_a_file_and_the_report_folder(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text("def has_x(sample):\n    return float('x' in sample.completion)\n")
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"completion": c}) + "\n" for c in ["x", "y", "xx"]))
    result = run("score", str(source), "-r", f"{tmp_path / 'mine.py'}:has_x", "--report", str(tmp_path / "r"), "-w", "1")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (tmp_path / "in.scored.jsonl").read_text().splitlines()]
    assert [r["reward"] for r in rows] == [1.0, 0.0, 1.0]
    summary = json.loads((tmp_path / "r" / "report.json").read_text())
    assert summary["statuses"]["ok"] == 3 and abs(summary["score_mean"] - 2 / 3) < 1e-9
    assert "| reward mean ± std | 0.6667 ± 0.4714 |" in (tmp_path / "r" / "report.md").read_text()
    assert json.loads(result.stdout) == summary  # stdout: the same figures, one JSON line
    assert "reward mean ± std" in result.stderr  # the table


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


def _hostile_lines(count: int, seed: int = 0) -> tuple[list[bytes], list[bool]]:
    """`count` raw lines (no trailing newline), mixing every kind of bad line with valid ones;
    and which of them are valid samples."""
    import random

    rng = random.Random(seed)
    bad = [
        b"[" * 100_000 + b"]" * 100_000,  # nested past the parser's recursion limit
        b'{"completion": "x", "meta": {"n": ' + b"9" * 5000 + b"}}",  # beyond Python's int digit limit
        b'{"completion": "lone \\ud800 surrogate", "reference": "x"}',
        b'{"completion": "bare\r carriage return inside", "reference": "bare"}',
        b"",  # blank
        b"   \t ",
        b'{"completion": "nan", "meta": {"v": NaN, "w": [Infinity, -Infinity]}}',
        b"\xff\xfe not utf-8 \x80",
        b"{not json",
        b'"just a string"',
        b"[1, 2, 3]",
        b'{"completion": 42}',
        b'{"prompt": "no completion"}',
        b"null",
        b'{"completion": "x"' + b" " * 10,
    ]
    lines, valid = [], []
    for index in range(count):
        if rng.random() < 0.5:
            answer = rng.randint(0, 99)
            lines.append(json.dumps({"completion": f"The answer is {answer}", "reference": str(answer if rng.random() < 0.5 else answer + 1)},
                                    ensure_ascii=False).encode())
            valid.append(True)
        else:
            choice = bad[index % len(bad)]
            lines.append(choice)
            valid.append(choice.startswith(b'{"completion": "') and b"9" * 10 not in choice)
    return lines, valid


def test_thousands_of_hostile_lines_give_one_output_line_each(tmp_path: Path) -> None:
    lines, _ = _hostile_lines(3000)
    source = tmp_path / "hostile.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")  # with a byte-order mark in front
    out = tmp_path / "out.jsonl"
    result = run("score", str(source), "--reward", "exact_match", "--out", str(out), "--workers", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    raw = out.read_bytes()
    raw.decode("utf-8")  # valid UTF-8 whatever came in
    rows = [json.loads(line, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}")) for line in raw.split(b"\n")[:-1]]
    assert len(rows) == len(lines)
    assert [row["info"]["line"] for row in rows] == list(range(1, len(lines) + 1))
    by_kind = {row["info"]["line"]: row for row in rows}
    assert by_kind[1]["status"] in ("ok", "error")  # the BOM did not make line 1 unreadable
    statuses = {row["status"] for row in rows}
    assert statuses <= {"ok", "error", "abstain"} and "ok" in statuses
    assert all("reward" in row for row in rows)
    nan_rows = [row for row in rows if isinstance(row.get("meta"), dict) and "v" in row["meta"]]
    assert nan_rows and all(row["meta"] == {"v": "NaN", "w": ["Infinity", "-Infinity"]} for row in nan_rows)
    assert any(row.get("completion") == "bare\r carriage return inside" and row["status"] == "ok" for row in rows)
    assert any(row.get("completion") == "lone \ud800 surrogate" for row in rows)
    deep = [row for row in rows if "nested too deeply" in str(row["info"].get("error"))]
    digits = [row for row in rows if "digit" in str(row["info"].get("error"))]
    blank = [row for row in rows if row["info"].get("error", "").endswith("blank line")]
    assert deep and digits and len(blank) >= 2


def test_an_unwritable_out_is_a_usage_error_before_any_scoring(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"completion": "x"}) + "\n")
    for target in (tmp_path, Path("/proc/payoff-cannot-write-here.jsonl")):
        result = run("score", str(source), "--reward", "exact_match", "--out", str(target))
        assert result.returncode == 2, result.stderr
        assert "--out" in result.stderr and "Traceback" not in result.stderr
        assert "scoring" not in result.stderr  # refused before the progress bar started


def test_set_overrides_a_config_on_score(tmp_path: Path) -> None:
    config = tmp_path / "rubric.toml"
    config.write_text('[reward]\nname = "r"\n[[reward.terms]]\nname = "exact_match"\nweight = 1.0\n'
                      '[[reward.terms]]\nname = "think_format"\nweight = 0.5\n')
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"completion": "<think>t</think> 42", "reference": "42"}) + "\n")
    plain = run("score", str(source), "--config", str(config), "--out", str(tmp_path / "a.jsonl"), "-w", "0")
    changed = run("score", str(source), "--config", str(config), "--set", "reward.terms.1.weight=2.0", "--out", str(tmp_path / "b.jsonl"), "-w", "0")
    assert plain.returncode == changed.returncode == 0, changed.stderr
    assert json.loads((tmp_path / "a.jsonl").read_text())["reward"] == 1.5
    assert json.loads((tmp_path / "b.jsonl").read_text())["reward"] == 3.0
    bad = run("score", str(source), "--config", str(config), "--set", "reward.terms.7.weight=2")
    assert bad.returncode == 2 and "not an index" in bad.stderr
    alone = run("score", str(source), "--reward", "exact_match", "--set", "reward.normalize=group")
    assert alone.returncode == 2 and "--config" in alone.stderr
