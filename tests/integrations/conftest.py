"""Print the conformance table (client x reward x path -> identical outcomes) at the end."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def _release_shared_engines():
    """The adapters' engines are the process's shared ones, kept for the next call: each module's
    are shut down when it ends, so no later test finds their workers (or cgroup boxes) running."""
    yield
    from payoff.engine.shared import shutdown_all

    shutdown_all()


def pytest_terminal_summary(terminalreporter) -> None:
    from tests.integrations.conformance import TABLE

    if TABLE.rows:
        terminalreporter.write_sep("-", "payoff conformance: the same samples through each client's own code")
        terminalreporter.write_line(TABLE.render())
