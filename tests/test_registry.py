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
