"""A hack class: one published way to fool a reward, as a function from a task row to probes.

Each class says where it comes from (a paper, an issue, a CVE), which task rows it builds its
probes from (``tasks``: the row's ``kind``), which kinds of reward it is aimed at (``aimed``), and
which naive reward in ``examples/naive_rewards.py`` it fools, written the way the source did it.
Its ``effect`` is what a win looks like: ``credit`` (the reward credits a wrong answer) or
``hang`` (the reward does not come back in time: a time or memory bomb).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from payoff.audit.probes import Probe

# The kinds of reward payoff has, as the matrix's columns name them.
REWARD_KINDS = ("math", "choice", "text", "similarity", "format", "length", "code", "sql", "judge", "reward_model", "prm",
                "implicit", "episode")
ANSWERS = ("math", "choice", "text")  # task kinds whose reference is an answer to state


@dataclass(frozen=True)
class Hack:
    name: str  # the probe family it produces
    build: Callable[[dict[str, Any]], list[Probe]]
    tasks: tuple[str, ...]  # task kinds it builds probes from
    aimed: tuple[str, ...]  # reward kinds it is aimed at
    source: str  # paper, issue or CVE
    naive: str | None = None  # the function of examples/naive_rewards.py it fools (None: a pre-existing class)
    effect: str = "credit"
    na: str = ""  # why the class never builds a probe for a reward (it is checked elsewhere), if so

    def probes(self, task: dict[str, Any]) -> list[Probe]:
        return self.build(task) if task.get("kind", "math") in self.tasks else []

    def why_not(self, kinds: set[str]) -> str:
        """Why this class built no probe from data whose task kinds are `kinds`."""
        if self.na:
            return self.na
        return f"builds its probes from {'/'.join(self.tasks)} tasks; the data has {'/'.join(sorted(kinds)) or 'none'}"


def hack(tasks: tuple[str, ...], aimed: tuple[str, ...], naive: str | None = None, effect: str = "credit"
         ) -> Callable[[Callable[[dict[str, Any]], list[Probe]]], Hack]:
    """Decorate a probe builder into a `Hack`; its docstring is its source."""
    def wrap(build: Callable[[dict[str, Any]], list[Probe]]) -> Hack:
        return Hack(build.__name__, build, tasks, aimed, " ".join((build.__doc__ or "").split()), naive, effect)
    return wrap
