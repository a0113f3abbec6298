"""Print the conformance table (client x reward x path -> identical outcomes) at the end."""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter) -> None:
    from tests.integrations.conformance import TABLE

    if TABLE.rows:
        terminalreporter.write_sep("-", "payoff conformance: the same samples through each client's own code")
        terminalreporter.write_line(TABLE.render())
