"""What a PATH holds, found by its files, and the small files read whole (metrics, reports).

- a run folder (`payoff.runs`): ``metrics.jsonl`` and/or ``samples.jsonl`` (plus ``summary.json``,
  ``config.json``);
- a scored JSONL file (`payoff score` output, or any samples file);
- report folders (``report.json``, or ``matrix.json`` for the audit's hack matrix): an audit
  (``families``), an eval (``suite``; its items in ``items.jsonl``), a rescore (``pairs``);
- a folder of those: every report folder one level down is found too (``evals/math``,
  ``evals/length``: the eval view puts the rewards side by side).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class NothingToView(ValueError):
    """A PATH that holds nothing the viewer reads."""


@dataclass
class Source:
    path: Path
    metrics: Path | None = None
    samples: Path | None = None
    summary: dict[str, Any] | None = None
    audits: list[Path] = field(default_factory=list)  # report.json of `payoff audit`
    matrices: list[Path] = field(default_factory=list)  # matrix.json of the audit's hack matrix
    evals: list[Path] = field(default_factory=list)  # report.json of `payoff eval`
    rescores: list[Path] = field(default_factory=list)  # report.json of `payoff rescore`

    def kinds(self) -> list[str]:
        found = []
        if self.metrics:
            found.append("curves")
        if self.samples:
            found.append("samples")
        for kind, paths in (("disagreements", self.rescores), ("audit", self.audits + self.matrices), ("eval", self.evals)):
            if paths:
                found.append(kind)
        return found

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "views": self.kinds(), "summary": self.summary,
                "samples": str(self.samples) if self.samples else None}


def report_kind(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("cells"), list):
        return "matrix"
    if "families" in data and "verdict" in data:
        return "audit"
    if "suite" in data:
        return "eval"
    if isinstance(data.get("pairs"), list) and "rollouts" in data:
        return "rescore"
    return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _add_report(source: Source, path: Path) -> bool:
    kind = report_kind(_read_json(path))
    target = {"matrix": source.matrices, "audit": source.audits, "eval": source.evals, "rescore": source.rescores}.get(kind or "")
    if target is None:
        return False
    target.append(path)
    return True


def _scan_folder(source: Source, folder: Path) -> None:
    for name in ("report.json", "matrix.json"):
        if (folder / name).is_file():
            _add_report(source, folder / name)


def detect(path: str | Path) -> Source:
    """The `Source` at `path`, or `NothingToView` saying what was looked for."""
    path = Path(path)
    if not path.exists():
        raise NothingToView(f"{path}: no such file or folder")
    source = Source(path.resolve())
    if path.is_file():
        if path.suffix == ".json":
            if not _add_report(source, path):
                raise NothingToView(f"{path}: not a report the viewer reads (an audit, eval or rescore report.json, or an audit matrix.json)")
        elif path.name == "metrics.jsonl":
            return detect(path.parent)
        else:
            source.samples = path
        return source
    if (path / "metrics.jsonl").is_file():
        source.metrics = path / "metrics.jsonl"
    if (path / "samples.jsonl").is_file():
        source.samples = path / "samples.jsonl"
    summary = _read_json(path / "summary.json") if (path / "summary.json").is_file() else None
    source.summary = summary if isinstance(summary, dict) else None
    _scan_folder(source, path)
    for child in sorted(p for p in path.iterdir() if p.is_dir() and p.name not in ("checkpoints", "tensorboard")):
        _scan_folder(source, child)
    if not source.kinds():
        raise NothingToView(f"{path}: found none of metrics.jsonl, samples.jsonl, report.json or matrix.json "
                            "(here or one folder down)")
    return source


# -- the small files, read whole ---------------------------------------------------------------------------
PANELS = (("reward", lambda k: k == "reward_mean" or k.startswith("reward/")),
          ("accuracy", lambda k: k in ("accuracy", "heldout_accuracy") or k.startswith("pass@")),
          ("KL", lambda k: k == "kl" or k.startswith("kl_")),
          ("length", lambda k: k in ("completion_length", "truncated") or k.startswith("turns")),
          ("monitor", lambda k: k.startswith("monitor/") or k == "warnings"),
          ("status", lambda k: k.startswith("status/")))


def read_metrics(path: Path) -> dict[str, Any]:
    """metrics.jsonl as columns against step, grouped into the page's panels; ``warnings`` as a
    count per step (the monitor's flags) with their texts kept per step."""
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), (int, float)):
            rows.append(row)
    rows.sort(key=lambda r: r["step"])
    keys: list[str] = []
    for row in rows:
        keys += [k for k, v in row.items() if k not in keys and k != "step" and (_is_number(v) or k == "warnings")]
    series = {k: [(len(r[k]) if isinstance(r.get(k), list) else r.get(k)) if k == "warnings" else
                  (r.get(k) if _is_number(r.get(k)) else None) for r in rows] for k in keys}
    warnings = {str(r["step"]): r["warnings"] for r in rows if r.get("warnings")}
    panels, placed = [], set()
    for title, wanted in PANELS:
        chosen = [k for k in keys if wanted(k) and k not in placed]
        if chosen:
            panels.append({"title": title, "keys": chosen})
            placed.update(chosen)
    others = [k for k in keys if k not in placed and not k.startswith("time_")]
    return {"steps": [r["step"] for r in rows], "series": series, "panels": panels, "other": others, "warnings": warnings}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def warned_steps(metrics: dict[str, Any] | None) -> set[int]:
    return {int(step) for step in (metrics or {}).get("warnings", {})}


def read_report(path: Path) -> dict[str, Any]:
    data = _read_json(path)
    return {"path": str(path), "name": path.parent.name, **(data if isinstance(data, dict) else {})}
