"""The hack classes `payoff audit` runs, by what they attack: answers, code, SQL, judges, learned
rewards and episodes. Each is a `Hack` (payoff.audit.hacks.base) with its source, the task kinds it
builds probes from and the reward kinds it is aimed at; `HACKS` is the registry the matrix rows
come from, `FAMILIES` the probe builders per task kind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import payoff.audit.probes as old
from payoff.audit.hacks import answers, code, episodes, judges, models, sql
from payoff.audit.hacks.base import REWARD_KINDS, Hack
from payoff.audit.probes import Probe

HACKS: tuple[Hack, ...] = (*answers.HACKS, *code.HACKS, *sql.HACKS, *judges.HACKS, judges.POSITION_BIAS, *models.HACKS,
                           *episodes.HACKS)
BY_NAME: dict[str, Hack] = {h.name: h for h in HACKS}
NEW: tuple[Hack, ...] = (*answers.NEW, *code.NEW, *sql.NEW, *judges.NEW, *models.HACKS, *episodes.NEW)

# The probe builders per task kind: the families payoff always ran, then every newer class.
FAMILIES: dict[str, list[Callable[[dict[str, Any]], list[Probe]]]] = {
    kind: [*builders, *(h.build for h in NEW if kind in h.tasks)] for kind, builders in old.FAMILIES.items()
}


def probes_for(task: dict[str, Any]) -> list[Probe]:
    kind = task.get("kind", "math")
    if kind not in FAMILIES:
        raise ValueError(f"unknown task kind {kind!r}; expected one of {sorted(FAMILIES)}")
    return [probe for family in FAMILIES[kind] for probe in family(task)]


__all__ = ["BY_NAME", "FAMILIES", "HACKS", "REWARD_KINDS", "Hack", "probes_for"]
