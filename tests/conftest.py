"""Suite-wide: one closing line that says what was skipped and why (capability checks skip
with a reason instead of failing; CI, as root with bubblewrap, runs them all)."""

from __future__ import annotations

from collections import Counter


def pytest_terminal_summary(terminalreporter) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    reasons: Counter[str] = Counter()
    for report in skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    if reasons:
        listed = "; ".join(f"{count} x {reason}" for reason, count in reasons.most_common())
        terminalreporter.write_line(f"skipped {len(skipped)}: {listed}")
    else:
        terminalreporter.write_line("skipped 0: every capability this suite checks is present")
