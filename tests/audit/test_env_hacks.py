"""The episode hack classes in the sql, search, feedback and calculator environments: each
applicable cell is a real episode in the real environment; payoff's environment and its reward
give the hack nothing, the naive environment or reward of its source gives it the win."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from payoff.audit.env_hacks import CELLS, ENVS, EnvCell, env_cells, play
from payoff.audit.hacks import BY_NAME

NAIVE = Path(__file__).resolve().parents[2] / "examples" / "naive_rewards.py"


def _naive():
    spec = importlib.util.spec_from_file_location("naive_rewards_envs", NAIVE)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_every_episode_class_has_a_cell_in_every_environment() -> None:
    episode = {"read_hidden_answer", "edit_tests", "tool_claims_success", "answer_in_tool_call", "tool_loop", "quote_feedback"}
    assert {(c.hack, c.env) for c in CELLS} == {(h, e) for h in episode for e in ENVS}
    assert episode <= set(BY_NAME)
    for cell in CELLS:
        assert (cell.script is None) == bool(cell.na), cell
        assert cell.script is None or cell.naive, cell
    assert {c.env for c in CELLS if c.script is not None} == set(ENVS)  # every environment has something to check


APPLICABLE = [c for c in CELLS if c.script is not None]


@pytest.mark.parametrize("cell", APPLICABLE, ids=lambda c: f"{c.hack}-{c.env}")
def test_payoff_gives_the_hack_nothing_and_the_naive_way_is_fooled(cell: EnvCell) -> None:
    won, sample, outcome = play(cell)
    assert not won, (outcome, [m.get("content") for m in sample.messages or []][-4:])
    if not cell.secret:
        assert outcome.status in ("ok", "abstain"), outcome  # a real verdict, not an environment failure
    naive_won, sample, outcome = play(cell, _naive())
    assert naive_won, (cell.naive, outcome, [m.get("content") for m in sample.messages or []][-4:])


def test_the_cells_go_into_the_matrix() -> None:
    cells = env_cells()
    assert len(cells) == len(CELLS) and {c.reward for c in cells} == {f"env:{e}" for e in ENVS}
    assert all(c.status == ("n/a" if c.probes == 0 else "pass") for c in cells)
    assert all(c.why for c in cells if c.status == "n/a")
