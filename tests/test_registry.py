from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from payoff import registry
from payoff.core import REGISTRY
from payoff.registry import RewardNotFound, get_reward


def test_builtins_are_found_by_name() -> None:
    assert get_reward("exact_match").name == "exact_match"
    assert {"exact_match", "think_format"} <= set(registry.list_rewards())


def test_unknown_name_lists_what_exists() -> None:
    with pytest.raises(RewardNotFound, match="registered: .*exact_match"):
        get_reward("no_such_reward")


def test_file_and_module_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = textwrap.dedent(
        """
        def shouty(sample):
            return float(sample.completion.isupper())
        """
    )
    (tmp_path / "my_rewards.py").write_text(source)
    from_file = get_reward(f"{tmp_path / 'my_rewards.py'}:shouty")
    assert from_file({"completion": "HI"}).score == 1.0
    monkeypatch.syspath_prepend(str(tmp_path))
    from_module = get_reward("my_rewards:shouty")
    assert from_module({"completion": "hi"}).score == 0.0
    with pytest.raises(RewardNotFound, match="has no attribute 'nothing'"):
        get_reward("my_rewards:nothing")
    with pytest.raises(RewardNotFound, match="no such file"):
        get_reward(str(tmp_path / "absent.py") + ":f")


def test_plugins_come_from_the_entry_point_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real installed-distribution layout (dist-info with entry_points.txt) on sys.path: the
    # same metadata pip writes, read by importlib.metadata.
    (tmp_path / "plugin_pkg.py").write_text("def always_one(sample):\n    '''Plugin reward.'''\n    return 1.0\n")
    dist = tmp_path / "plugin_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: plugin-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[payoff.rewards]\nalways_one = plugin_pkg:always_one\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    try:
        found = get_reward("always_one")
        assert found({"completion": ""}).score == 1.0 and found.summary == "Plugin reward."
    finally:
        REGISTRY.pop("always_one", None)
        sys.modules.pop("plugin_pkg", None)


ROOT = Path(__file__).resolve().parent.parent


def _declared() -> dict[str, str]:
    """payoff's own ``payoff.rewards`` entry points, as pyproject.toml declares them."""
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["payoff.rewards"]


def test_payoffs_entry_points_name_rewards_of_the_same_name() -> None:
    import importlib

    from payoff.core import Reward

    declared = _declared()
    assert {"reward_model", "prm", "implicit_reward", "self_certainty", "rlpr", "judge_pointwise", "judge_brpo"} <= set(declared)
    for name, target in declared.items():
        module, _, attr = target.partition(":")
        found = getattr(importlib.import_module(module), attr)
        assert isinstance(found, Reward) and found.name == name, target
    # Every reward those modules register is declared: a new one without its entry point would be
    # unknown by name (the registry imports none of them).
    modules = {target.partition(":")[0] for target in declared.values()}
    registered = {name for name, found in REGISTRY.items() if getattr(found.fn, "__module__", None) in modules}
    assert registered - set(declared) == set()


def test_the_installed_metadata_is_the_declared_one() -> None:
    from importlib.metadata import entry_points

    installed = {point.name: point.value for point in entry_points(group=registry.ENTRY_POINT_GROUP) if point.value.startswith("payoff.")}
    assert installed == _declared(), "the installed entry points are stale: run `pip install -e . --no-deps` again"


def test_a_model_backed_reward_is_found_by_name_alone() -> None:
    import subprocess

    code = ("import sys; from payoff.registry import get_reward; found = get_reward('reward_model'); "
            "print(found.name, 'payoff.judges.kinds' in sys.modules, 'payoff.rl.policy_rewards' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["reward_model", "False", "False"]  # its own entry point only, not every plugin
