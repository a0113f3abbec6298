"""Where a command's results go: tables, progress and notes to stderr; one JSON line of the headline
numbers to stdout (for scripts and ``jq``); with ``--report DIR``, DIR/report.json and DIR/report.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

err = Console(stderr=True)


def emit(result: dict[str, Any]) -> None:
    """The command's headline numbers as one JSON line on stdout."""
    typer.echo(json.dumps(result, default=repr))


def write_report(folder: Path, result: dict[str, Any], markdown: str) -> list[Path]:
    """DIR/report.json (`result`, every number) and DIR/report.md (`markdown`, for people); the
    command adds its plots beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(result, indent=1, ensure_ascii=False, default=repr) + "\n")
    (folder / "report.md").write_text(markdown if markdown.endswith("\n") else markdown + "\n")
    return [folder / "report.json", folder / "report.md"]


def markdown_table(title: str, rows: list[tuple[str, Any]], header: tuple[str, str] = ("metric", "value")) -> str:
    """A two-column Markdown table under a title, for reports that are a list of figures."""
    lines = [f"# {title}", "", f"| {header[0]} | {header[1]} |", "|---|---:|"]
    lines += [f"| {name.strip()} | {value} |" for name, value in rows]
    return "\n".join(lines) + "\n"


def wrote(paths: list[Path]) -> None:
    for path in paths:
        err.print(f"wrote {path}")
