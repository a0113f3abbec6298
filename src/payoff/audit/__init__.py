"""Trust: attack a reward with known hacks before training (`audit`, over the hack classes of
`payoff.audit.hacks`, reported as a matrix by `payoff.audit.matrix`), and watch for hacking
while it trains (`monitors`)."""

from payoff.audit.hacks import FAMILIES, HACKS, probes_for
from payoff.audit.probes import Probe
from payoff.audit.runner import AuditReport, FamilyResult, audit

__all__ = ["FAMILIES", "HACKS", "AuditReport", "FamilyResult", "Probe", "audit", "probes_for"]
