"""The local judge's shared template prefix (``share_prefix``) from every way a judge is
configured: a rubric TOML, ``payoff score --set``, and Python; on the real embedded
SmolLM2-135M-Instruct, so verdicts with the prefix computed once are compared with whole-prompt
forwards."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from payoff.compose import RubricConfigError, load_rubric
from payoff.core import RewardParameterError
from payoff.engine import score
from payoff.judges.backends import LocalBackend
from payoff.judges.templates import load_template
from payoff.registry import get_reward

SAMPLES = [{"prompt": f"What is {a} + {a + 3}?", "completion": f"It is {2 * a + 3 + a % 2}." + " Checked." * (a % 3), "reference": str(2 * a + 3)}
           for a in range(1, 10)]


def _rubric(tmp_path: Path, params: str) -> Path:
    config = tmp_path / "judge.toml"
    config.write_text(f'[reward]\nname = "j"\n[[reward.terms]]\nname = "judge_reference"\nparams = {{ {params} }}\n')
    return config


def _shared_tokens(outcome) -> int:
    found = [v for k, v in _walk(outcome.info) if k == "shared_prefix_tokens"]
    assert len(found) == 1, outcome.info
    return found[0]


def _walk(info):
    for key, value in info.items():
        yield key, value
        if isinstance(value, dict):
            yield from _walk(value)


def test_share_prefix_from_a_rubric_toml_reaches_the_backend(tmp_path: Path) -> None:
    on = score(SAMPLES, load_rubric(_rubric(tmp_path, "guard = false, share_prefix = true, batch_size = 9")), workers=0)
    off = score(SAMPLES, load_rubric(_rubric(tmp_path, "guard = false, share_prefix = false, batch_size = 9")), workers=0)
    assert all(o.status == "ok" for o in on + off)
    assert all(_shared_tokens(o) >= LocalBackend.SHARE_MIN_TOKENS for o in on)  # the template's head, computed once
    assert all(_shared_tokens(o) == 0 for o in off)
    for a, b in zip(on, off):
        assert a.score == pytest.approx(b.score, abs=1e-4)
    with pytest.raises((RubricConfigError, RewardParameterError), match="share_prefix"):
        load_rubric(_rubric(tmp_path, 'share_prefix = "sometimes"'))


def test_the_default_shares_the_prefix_only_for_batches_where_it_measured_faster() -> None:
    judge = get_reward("judge_reference").configure(guard=False)
    few = score(SAMPLES[:3], judge.configure(batch_size=1), workers=0)  # one prompt per call: below SHARE_MIN_ROWS
    many = score(SAMPLES, judge.configure(batch_size=9), workers=0)
    assert LocalBackend.SHARE_MIN_ROWS > 1 and len(SAMPLES) >= LocalBackend.SHARE_MIN_ROWS
    assert all(_shared_tokens(o) == 0 for o in few)
    assert all(_shared_tokens(o) > 0 for o in many)
    # exact: the prefix is cut from the token ids, so verdicts equal whole-prompt forwards
    template = load_template("reference")
    prompts = [template.render(prompt=s["prompt"], reference=s["reference"], response=s["completion"]) for s in SAMPLES]
    whole = LocalBackend(batch_size=1, share_prefix=False).verdicts(prompts, ["Yes", "No"])
    for outcome, verdict in zip(many, whole):
        assert outcome.score == pytest.approx(verdict["Yes"], abs=1e-4)
    with pytest.raises(ValueError, match="batch_size"):
        LocalBackend(batch_size=0)


def test_share_prefix_from_the_command_line(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(s) + "\n" for s in SAMPLES[:4]))
    config = _rubric(tmp_path, "guard = false, batch_size = 4")
    command = [sys.executable, "-m", "payoff", "score", str(source), "--config", str(config), "-w", "0"]
    for value, expect_shared in (("true", True), ("false", False)):
        out = tmp_path / f"{value}.jsonl"
        done = subprocess.run([*command, "--set", f"reward.terms.0.params.share_prefix={value}", "--out", str(out)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
        shared = [v for r in rows for k, v in _walk(r["info"]) if k == "shared_prefix_tokens"]
        assert len(shared) == 4 and all((v > 0) == expect_shared for v in shared), rows[0]["info"]
