"""The run harness on a small torch model: a run folder, the seeded step order, checkpoints every
N steps and at the last, resume that replays an uninterrupted run exactly, summary and curves, and
config errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from payoff import heap
from payoff.runs.config import ConfigError, DatasetRunConfig, PairDataConfig, load_toml_config
from payoff.runs.data import held_out_split, step_indices, touched
from payoff.runs.optim import adamw, learning_rate
from payoff.runs.run import Run


class Config(DatasetRunConfig):
    data: PairDataConfig = PairDataConfig(train="unused")


def _config(run_dir: Path, **changes: Any) -> Config:
    settings = {"seed": 4, "steps": 6, "run_dir": str(run_dir), "checkpoint_every": 4,
                "optim": {"lr": 0.05, "batch_size": 4, "micro_batch": 2}, "log": {"progress": False, "tensorboard": False}}
    return Config.model_validate({**settings, **changes})


def _train(config: Config, resume: Path | None = None, stop_after: int | None = None) -> dict[str, Any]:
    """A linear regression trained through the harness, the way rm/prm/dpo train."""
    run = Run(config, resume)
    torch.manual_seed(0)
    x = torch.randn(20, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    model = torch.nn.Linear(3, 1)
    optimizer = adamw(model.parameters(), config.optim.lr)
    run.resume(model, optimizer)
    with run.progress("toy", loss="-") as bar:
        for lr, mine, chunks in run.batches(optimizer, len(x)):
            assert sum(chunks, []) == mine and all(len(c) <= config.optim.micro_batch for c in chunks)
            assert heap._held == 1  # the loop runs with glibc's heap held (heap.held_heap)
            loss = sum(((model(x[c]).squeeze(-1) - y[c]) ** 2).sum() for c in chunks) / len(mine)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            run.end_step({"loss": loss.item(), "lr": lr, "noise": torch.rand(1).item()}, model, optimizer, {"note": "kept"})
            bar.update(run.step, loss=f"{loss.item():.3f}")
            if stop_after is not None and run.step == stop_after:
                return {}  # a run killed after this step (its checkpoint, if due, is written)
    return run.finish({"weight": model.weight.detach().tolist()}, curves=("loss", "lr"), title="toy")


def _rows(run_dir: Path, timed: bool = False) -> list[dict[str, Any]]:
    """The metrics rows; without each step's wall time unless ``timed``."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return rows if timed else [{k: v for k, v in row.items() if k != "time_step"} for row in rows]


def test_a_run_writes_its_folder(tmp_path: Path) -> None:
    summary = _train(_config(tmp_path / "run"))
    run_dir = tmp_path / "run"
    assert summary["steps"] == 6 and summary["seed"] == 4 and summary["resumed_from"] is None and summary["processes"] == 1
    assert heap._held == 0  # and released when the loop ends
    assert summary["peak_rss_mb"] > 0 and summary["seconds_per_step"] > 0
    assert json.loads((run_dir / "summary.json").read_text())["weight"] == summary["weight"]
    assert json.loads((run_dir / "config.json").read_text())["steps"] == 6
    assert [row["step"] for row in _rows(run_dir)] == [1, 2, 3, 4, 5, 6]
    times = [row["time_step"] for row in _rows(run_dir, timed=True)]  # each step's wall time, inside the loop's
    assert all(t > 0 for t in times) and sum(times) <= summary["seconds_per_step"] * 6 + 1e-3
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-000004", "step-000006"]  # every 4, and the last
    assert (run_dir / "curves.png").stat().st_size > 1000


def test_resume_replays_the_uninterrupted_run(tmp_path: Path) -> None:
    whole = _train(_config(tmp_path / "whole"))
    _train(_config(tmp_path / "killed"), stop_after=5)  # checkpoint at 4, step 5 logged, then killed
    assert [row["step"] for row in _rows(tmp_path / "killed")] == [1, 2, 3, 4, 5]
    resumed = _train(_config(tmp_path / "elsewhere"), resume=tmp_path / "killed")
    assert resumed["resumed_from"].endswith("step-000004") and resumed["steps"] == 6
    assert resumed["weight"] == whole["weight"]  # weights, optimiser, data order and RNG all came back
    assert _rows(tmp_path / "killed") == _rows(tmp_path / "whole")  # step 5 was logged once, by the rerun
    state = json.loads((tmp_path / "killed" / "checkpoints" / "step-000006" / "state.json").read_text())
    assert state["note"] == "kept" and state["wall_seconds_before_resume"] > 0


def test_resume_without_a_checkpoint_starts_over(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = _train(_config(tmp_path / "run", checkpoint_every=0), resume=tmp_path / "run")
    assert summary["steps"] == 6 and summary["resumed_from"] is None and not (tmp_path / "run" / "checkpoints").exists()
    assert "no checkpoint" in capsys.readouterr().err


def test_a_step_must_end_with_end_step(tmp_path: Path) -> None:
    config = _config(tmp_path / "run")
    run = Run(config)
    model = torch.nn.Linear(1, 1)
    optimizer = adamw(model.parameters(), 0.1)
    run.resume(model, optimizer)
    with pytest.raises(RuntimeError, match="end_step"):
        for _ in run.batches(optimizer, 10):
            pass


def test_the_order_the_split_and_the_schedule() -> None:
    assert [step_indices(s, 3, 7, 1) for s in range(4)] == [step_indices(s, 3, 7, 1) for s in range(4)]
    assert sorted(sum((step_indices(s, 7, 7, 2) for s in range(1)), [])) == list(range(7))  # one epoch: each once
    assert set(touched(2, 3, 7, 1)) == set(step_indices(0, 3, 7, 1) + step_indices(1, 3, 7, 1))
    train, held = held_out_split(list(range(10)), 0.2, 3)
    assert len(held) == 2 and sorted(train + held) == list(range(10)) and train == sorted(train)
    assert [learning_rate(s, 1.0, 4) for s in range(4)] == [1.0, 0.75, 0.5, 0.25]
    assert learning_rate(0, 1.0, 4, warmup_steps=2) == 0.5 and learning_rate(3, 1.0, 4, schedule="constant") == 1.0


def test_config_errors_name_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('steps = 3\n[optim]\nbatchsize = 4\n[data]\ntrain = "x"\n')
    with pytest.raises(ConfigError, match=r"run.toml: optim.batchsize: Extra inputs"):
        load_toml_config(Config, path)
    config = load_toml_config(Config, None, ["steps=9", "optim.lr=0.5", "data.train='y'"])
    assert config.steps == 9 and config.optim.lr == 0.5 and config.data.train == "y"
    path.write_text("steps = [\n")
    with pytest.raises(ConfigError, match="run.toml"):
        load_toml_config(Config, path)
