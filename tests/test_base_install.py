"""A base install (payoff's own dependencies, no extras, no torch) scores with the built-in
rewards: run in a cached venv under ~/.cache/payoff/venvs/ built from pyproject's dependencies."""

from __future__ import annotations

import json

import pytest

from tests.venvs import base_python, run_in

pytestmark = pytest.mark.slow

CODE = """
import asyncio, importlib.util, json
import payoff
assert importlib.util.find_spec("torch") is None, "this venv must not have torch"
math = payoff.get_reward("math")
samples = [{"completion": "The answer is 4.", "reference": "4"}, {"completion": "5", "reference": "4"},
           {"completion": "4", "reference": "\\\\boxed{"}]
scored = payoff.score(samples, "math", workers=1)
awaited = asyncio.run(payoff.ascore(samples, math, workers=1))
one = asyncio.run(math.ascore(samples[0]))
# payoff's model-backed rewards come through its own entry points (a wheel's metadata, absent
# from a source checkout on PYTHONPATH): load the one pyproject.toml declares, as get_reward does.
from importlib.metadata import EntryPoint
from payoff import registry
registry._load_point(EntryPoint("self_certainty", "payoff.rl.policy_rewards:self_certainty", "payoff.rewards"))
try:
    payoff.get_reward("self_certainty")
    missing = None
except LookupError as error:
    missing = str(error)
print(json.dumps({"scored": [[o.status, o.score] for o in scored], "awaited": [[o.status, o.score] for o in awaited],
                  "one": [one.status, one.score], "missing": missing}))
"""


def test_get_reward_and_score_without_torch() -> None:
    result = run_in(base_python(), CODE)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["scored"] == [["ok", 1.0], ["ok", 0.0], ["abstain", None]]
    assert report["awaited"] == report["scored"] and report["one"] == ["ok", 1.0]
    # A reward whose module needs torch is absent, and the error says why.
    assert "reward 'self_certainty' needs 'torch', which is not installed" in report["missing"]
