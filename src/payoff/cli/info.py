"""`payoff rewards` and `payoff doctor`: what is registered, and what this machine can enforce."""

from __future__ import annotations

import os
import platform
import shutil
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from payoff.containment import Containment
from payoff.registry import list_rewards

console = Console()


def rewards_command() -> None:
    """List every registered reward with the first line of its docstring."""
    table = Table(title="payoff rewards", show_lines=False)
    table.add_column("name", style="bold")
    table.add_column("kind")
    table.add_column("description")
    for name, found in list_rewards().items():
        table.add_row(name, "group" if found.is_group else "sample", escape(found.summary))
    console.print(table)


def doctor_command() -> None:
    """Report what isolation the engine gets on this machine."""
    box = Containment()
    box.close(set())
    try:
        from payoff.sandbox import capabilities

        sandbox = capabilities()
        sandbox_rows = [(f"sandbox {key}", str(value)) for key, value in sandbox.items()]
    except Exception as error:  # noqa: BLE001 - doctor reports, never crashes
        sandbox_rows = [("sandbox", f"unavailable: {error}")]
    try:
        from payoff.models.matmul import fast_fp32_matmul

        route = fast_fp32_matmul()
        matmul_rows = [("float32 matrix products", f"{route.library}: {route.why}")]
    except Exception as error:  # noqa: BLE001 - doctor reports, never crashes
        matmul_rows = [("float32 matrix products", f"not probed: {error}")]
    rows = [
        ("python", sys.version.split()[0]),
        ("platform", platform.platform()),
        ("cpus", str(os.cpu_count())),
        ("worker containment", box.kind + ("" if box.kind == "cgroup" else " (no process cap; setsid escapes)")),
        ("worker memory limit", "RLIMIT_AS"),
        ("bubblewrap (bwrap)", shutil.which("bwrap") or "not installed"),
        *sandbox_rows,
        *matmul_rows,
    ]
    table = Table(title="payoff doctor")
    table.add_column("check", style="bold")
    table.add_column("result")
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
