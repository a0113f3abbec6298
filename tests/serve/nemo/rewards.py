"""A reward for the NeMo-Gym tests that gives every status on demand: ok with components, abstain
(no reference), error (the reward raises) and timeout (it sleeps past the server's limit)."""

from __future__ import annotations

import time

from payoff.core import Outcome, Sample, reward


@reward(name="nemo_demo")
def nemo_demo(sample: Sample) -> Outcome:
    """1 if the answer is the reference (components: exact, used_tool)."""
    if sample.completion == "RAISE":
        raise RuntimeError("the reward broke on purpose")
    if sample.completion == "SLEEP":
        time.sleep(30)
    if sample.reference is None:
        return Outcome.abstain("no reference")
    exact = float(sample.completion.strip() == str(sample.reference))
    used_tool = float(bool(sample.meta.get("output_tools")))
    return Outcome.ok(exact + 0.5 * used_tool, {"exact": exact, "used_tool": used_tool})
