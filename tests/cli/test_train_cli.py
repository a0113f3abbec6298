"""`payoff rl train` config handling, run as a user runs it (a real subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from payoff.rl.config import TrainConfigError, apply_overrides, load_config, variant_configs

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "payoff", "rl", "train", *args], capture_output=True, text=True, timeout=120)


def test_bad_config_values_are_named_and_exit_2(tmp_path: Path) -> None:
    done = run(str(ROOT / "examples" / "demo.toml"), "--set", "rollout.group_size=0", "--set", "algorithm.advantage=ppo2")
    assert done.returncode == 2
    assert "rollout.group_size" in done.stderr and "algorithm.advantage" in done.stderr
    config = tmp_path / "typo.toml"
    config.write_text("[optim]\nlearning_rate = 1e-5\n")
    done = run(str(config))
    assert done.returncode == 2 and "optim.learning_rate" in done.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("steps = \n")
    done = run(str(broken))
    assert done.returncode == 2 and "broken.toml" in done.stderr


def test_overrides_parse_toml_values() -> None:
    data = apply_overrides({}, ["optim.lr=3e-6", "log.progress=false", 'rollout.stop=["\\n"]', "run_dir=out/x", "model.system=be brief"])
    assert data == {"optim": {"lr": 3e-6}, "log": {"progress": False}, "rollout": {"stop": ["\n"]}, "run_dir": "out/x",
                    "model": {"system": "be brief"}}
    with pytest.raises(TrainConfigError, match="expected key=value"):
        apply_overrides({}, ["steps"])


def test_the_example_configs_load_and_minimalist_has_its_four_variants() -> None:
    demo = load_config(ROOT / "examples" / "demo.toml")
    assert demo.reward["terms"][0]["name"] == "math" and demo.task.options == {"level": 1}
    minimalist = load_config(ROOT / "examples" / "minimalist.toml")
    variants = variant_configs(minimalist)
    assert set(variants) == {"grpo", "raft", "reinforce", "reinforce_rej"}
    assert variants["reinforce_rej"].algorithm.advantage == "reinforce" == variants["reinforce"].algorithm.advantage
    assert variants["reinforce_rej"].algorithm.selection == "reinforce_rej" != variants["reinforce"].algorithm.selection
    assert variants["raft"].algorithm.selection == "raft" and variants["raft"].rollout.group_size == 8
    assert variants["reinforce_rej"].run_dir.endswith("minimalist/reinforce_rej")
