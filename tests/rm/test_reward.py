"""The `reward_model` reward wherever a reward goes: the engine's batched path (whole batches of
similar length, typed outcomes and deadlines per batch), a Rubric, `payoff score`, and a real
`payoff serve` on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import torch

from payoff.compose import Rubric, Term
from payoff.engine import Engine, score
from payoff.models.reward_model import ModelInfo, RenderSpec, RewardModel, load_trunk, save_reward_model
from payoff.registry import get_reward
from tests.rl.toy import save_tiny
from tests.rm.batched import faulty, recorder
from tests.serve.helpers import running_server

SAMPLES = [{"prompt": f"What is {i} + 1?", "completion": ("It is " + str(i + 1) + ".") if i % 2 else "No idea " * (i % 5 + 1),
            "reference": str(i + 1)} for i in range(10)]


@pytest.fixture(scope="module")
def rm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rm")
    trunk, tokenizer = load_trunk(str(save_tiny(folder / "base")))
    torch.manual_seed(0)
    model = RewardModel(trunk, heads=3)
    with torch.no_grad():
        model.head.weight.normal_(std=0.5)
    save_reward_model(folder / "run" / "model", model.eval(), tokenizer, ModelInfo(str(folder / "base"), 3, None, RenderSpec(), 0.5, 2.0))
    return folder / "run"


def test_batches_are_whole_sorted_by_length_and_scored_once(tmp_path: Path) -> None:
    log = tmp_path / "batches.jsonl"
    samples = [{"completion": "x" * n} for n in (9, 1, 7, 3, 5, 2, 8, 4, 6, 10)]
    outcomes = score(samples, recorder.configure(log=str(log)), workers=2)
    assert [o.score for o in outcomes] == [9, 1, 7, 3, 5, 2, 8, 4, 6, 10]  # input order back
    batches = [json.loads(line)["batch"] for line in log.read_text().splitlines()]
    assert sorted(len(b) for b in batches) == [2, 4, 4]
    assert sorted(len(c) for b in batches for c in b) == list(range(1, 11))  # each sample scored exactly once
    assert all(max(map(len, b)) - min(map(len, b)) <= 3 for b in batches)  # similar lengths together
    reconfigured = recorder.configure(log=str(log), batch_size=5)
    assert reconfigured.batch_size == 5 and recorder.batch_size == 4


def test_a_failing_or_hanging_batch_costs_only_itself() -> None:
    samples = [{"completion": c} for c in ["ok1", "boom", "ok22", "hang", "ok333", "ok4444", "ok55555", "ok666666", "okay7777777"]]
    with Engine(faulty, workers=2) as engine:
        outcomes = engine.score(samples)
    by_text = {s["completion"]: o for s, o in zip(samples, outcomes)}
    assert by_text["boom"].status == "error" and "model crashed" in by_text["boom"].info["error"]
    assert by_text["hang"].status == "timeout"
    assert sum(o.status == "ok" and o.score == 1.0 for o in outcomes) >= 3  # every batch without boom/hang scored
    assert all(o.status in ("ok", "error", "timeout") for o in outcomes) and len(outcomes) == 9


def test_reward_model_scores_normalises_and_reports_heads(rm_dir: Path) -> None:
    raw = score(SAMPLES, get_reward("reward_model").configure(path=str(rm_dir)), workers=0)
    normal = score(SAMPLES, get_reward("reward_model").configure(path=str(rm_dir), normalize=True), workers=0)
    worst = score(SAMPLES, get_reward("reward_model").configure(path=str(rm_dir), aggregate="min"), workers=0)
    for r, n, w in zip(raw, normal, worst):
        assert r.status == n.status == "ok"
        assert n.score == pytest.approx((r.score - 0.5) / 2.0)
        heads = [r.components[f"head_{h}"] for h in range(3)]
        assert r.score == pytest.approx(sum(heads) / 3) and w.score == pytest.approx(min(heads))
        assert r.components["raw"] == r.score and "head_std" in r.components
    assert len({round(o.score, 6) for o in raw}) > 2  # it looks at the text


def test_same_scores_in_process_in_workers_and_inside_a_rubric(rm_dir: Path) -> None:
    rm = get_reward("reward_model").configure(path=str(rm_dir))
    alone = score(SAMPLES, rm, workers=0)
    pooled = score(SAMPLES, rm, workers=2)
    assert [o.score for o in pooled] == pytest.approx([o.score for o in alone], rel=1e-4, abs=1e-5)
    rubric = Rubric([Term(rm, 0.5), Term(get_reward("math"), 1.0)])
    assert rubric.batch_size == rm.batch_size and not rubric.is_group
    mixed = score(SAMPLES, rubric, workers=2)
    for a, m, sample in zip(alone, mixed, SAMPLES):
        correct = float(sample["completion"].startswith("It is"))
        assert m.score == pytest.approx(0.5 * a.score + correct, rel=1e-4, abs=1e-5)
        assert m.components["reward_model/raw"] == pytest.approx(a.score, rel=1e-4, abs=1e-5)


def test_a_missing_model_is_an_error_outcome_that_says_why(tmp_path: Path) -> None:
    outcomes = score(SAMPLES[:3], get_reward("reward_model").configure(path=str(tmp_path / "nothing")), workers=1)
    assert {o.status for o in outcomes} == {"error"}
    assert "holds no trained reward model" in outcomes[0].info["error"]


def test_cache_identity_follows_the_weights(rm_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(rm_dir, copy)
    rm = get_reward("reward_model").configure(path=str(copy))
    before = rm.fingerprint()
    head = torch.load(copy / "model" / "head.pt", weights_only=True)
    head["bias"] += 1.0
    torch.save(head, copy / "model" / "head.pt")
    assert rm.fingerprint() != before  # retrained into the same folder: cached scores must not be reused


def test_payoff_score_and_a_real_server_with_a_rubric_config(rm_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "rubric.toml"
    config.write_text(f'[reward]\nname = "rm_rubric"\n[[reward.terms]]\nname = "reward_model"\nweight = 1.0\n'
                      f'params = {{ path = "{rm_dir}", normalize = true }}\n')
    data = tmp_path / "samples.jsonl"
    data.write_text("".join(json.dumps(s) + "\n" for s in SAMPLES))
    local = score(SAMPLES, get_reward("reward_model").configure(path=str(rm_dir), normalize=True), workers=0)
    done = subprocess.run([sys.executable, "-m", "payoff", "score", str(data), "--config", str(config), "--out", str(tmp_path / "o.jsonl")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["reward"] for r in rows] == pytest.approx([o.score for o in local], rel=1e-4, abs=1e-5)
    with running_server("--config", str(config), "--workers", "1") as (url, _):
        served = httpx.post(f"{url}/v1/score", json={"samples": SAMPLES}, timeout=120).json()["outcomes"]
    assert [o["reward"] for o in served] == pytest.approx([o.score for o in local], rel=1e-4, abs=1e-5)
    assert served[0]["components"]["reward_model/normalized"] == pytest.approx(local[0].score, rel=1e-4, abs=1e-5)
