"""Trust: attack a reward with known hacks before training (`audit`), and watch for hacking
while it trains (`monitors`)."""

from payoff.audit.probes import FAMILIES, Probe, probes_for
from payoff.audit.runner import AuditReport, FamilyResult, audit

__all__ = ["FAMILIES", "AuditReport", "FamilyResult", "Probe", "audit", "probes_for"]
