"""`payoff rescore ROLLOUTS --variant SPEC ...`: rescore stored rollouts with reward variants."""

from __future__ import annotations

from pathlib import Path

import typer

from payoff.cli.options import REPORT, TIMEOUT_S, WORKERS, worker_count
from payoff.cli.report import emit, err, wrote


def rescore_command(
    rollouts: Path = typer.Argument(..., exists=True, dir_okay=False, help="Scored rollouts (a trainer's samples.jsonl, payoff score output)."),
    variant: list[str] = typer.Option([], "--variant", metavar="SPEC",
                                      help="A reward to compare: a name, module:function, file.py:function or a rubric .toml; repeat."),
    workers: int | None = WORKERS,
    timeout_s: float | None = TIMEOUT_S,
    threshold: float = typer.Option(0.5, help="A score at or above this passes (for Cohen's kappa and the confusion table)."),
    examples: int = typer.Option(5, help="Disagreements shown per pair of rewards."),
    report: Path | None = REPORT,
) -> None:
    """Rescore stored rollouts with reward variants: agreement, confusion, disagreements, sign flips.

    Each variant is compared with the stored reward and with the others; a sign flip is a prompt
    group whose advantages would change sign, i.e. a changed training signal."""
    from rich.table import Table

    from payoff.evaluate.rescore import rescore, write_rescore

    try:
        result = rescore(rollouts, variant, threshold=threshold, workers=worker_count(workers), examples=examples, timeout_s=timeout_s)
    except (ValueError, LookupError) as error:  # no usable rows; a variant that is no reward
        err.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    table = Table(title=f"payoff rescore {rollouts.name}")
    for column in ("A", "B", "kappa", "spearman", "agree", "sign flips"):
        table.add_column(column)
    for row in result["pairs"]:
        table.add_row(row["a"], row["b"], f"{row['kappa']:.3f}" if row["kappa"] is not None else "-",
                      f"{row['spearman']:.3f}" if row["spearman"] is not None else "-", f"{row['agreement']:.3f}",
                      f"{row['advantage_sign_changes']:.3f}" if row["advantage_sign_changes"] is not None else "-")
    err.print(table)
    if report is not None:
        wrote(write_rescore(result, report))
    emit({"pairs": [{k: v for k, v in p.items() if k != "disagreements"} for p in result["pairs"]]})
