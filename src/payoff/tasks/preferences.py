"""Preference pairs from the files users have: TRL's preference format (``prompt`` / ``chosen`` /
``rejected``, plain strings or chat messages, the prompt explicit or implicit in both
conversations, an optional ``margin``) and RewardBench-style rows (``subset``, ``id``; v2's lists
of chosen and rejected answers become every chosen x rejected pair), in JSONL, JSON, Parquet or
a ``datasets`` folder saved with ``save_to_disk``.

Nothing is dropped silently: a line that cannot be read, a pair whose two sides are identical or
one side empty, is counted under its reason with the first examples, and the ``on_bad`` policy
says what happens (``skip``: leave it out and report it; ``fail``: stop with the report).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from payoff.core import Text
from payoff.tasks.loader import table_rows


@dataclass
class Pair:
    """One preference: ``chosen`` is preferred to ``rejected`` as an answer to ``prompt``.
    ``prompt`` is text or messages; ``chosen``/``rejected`` are the completions (text, or the
    assistant messages that follow the prompt)."""

    prompt: Text
    chosen: Text
    rejected: Text
    margin: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)
    tie: bool = False  # the data says neither is better (trained toward r_c = r_r)


@dataclass
class DataReport:
    """What reading a preference file found: pairs kept, and every row left out by reason."""

    path: str
    rows: int = 0
    pairs: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < 3:
            shown.append(where)

    def describe(self) -> str:
        text = f"{self.path}: {self.pairs} pairs from {self.rows} rows"
        for reason, count in sorted(self.skipped.items()):
            text += f"; {count} skipped ({reason}: {', '.join(self.examples[reason])})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "rows": self.rows, "pairs": self.pairs, "skipped": self.skipped, "examples": self.examples}

    def close(self, kept: int, on_bad: str, what: str) -> None:
        """Count the ``kept`` examples; raise `PreferenceDataError` with the report when a row was
        skipped under ``on_bad = "fail"``, or when no ``what`` is left."""
        self.pairs = kept
        if self.skipped and on_bad == "fail":
            raise PreferenceDataError(self.describe(), self)
        if not kept:
            raise PreferenceDataError(f"no usable {what}: {self.describe()}", self)


class PreferenceDataError(ValueError):
    """A preference file that cannot be used, with the report of what was wrong."""

    def __init__(self, message: str, report: DataReport | None = None) -> None:
        super().__init__(message)
        self.report = report


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)


def _split_implicit(chosen: list[dict[str, Any]], rejected: list[dict[str, Any]]) -> tuple[list, list, list]:
    """TRL's implicit-prompt conversations: the shared leading messages are the prompt."""
    shared = 0
    while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
        shared += 1
    return chosen[:shared], chosen[shared:], rejected[shared:]


def _empty(value: Text) -> bool:
    if isinstance(value, str):
        return not value.strip()
    return not any(str(m.get("content", "")).strip() for m in value)


def _pairs_of(record: dict[str, Any], fields: dict[str, str]) -> list[Pair] | str:
    """The pairs one row holds, or why it holds none."""
    name = {key: fields.get(key, key) for key in ("prompt", "chosen", "rejected", "margin", "tie")}
    for key in ("chosen", "rejected"):
        if name[key] not in record:
            return f"no field {name[key]!r}"
    chosen, rejected = record[name["chosen"]], record[name["rejected"]]
    prompt = record.get(name["prompt"], None)
    meta = {k: record[k] for k in ("subset", "id") if k in record}
    margin = record.get(name["margin"], 0.0)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(margin):
        return f"margin {margin!r} is not a finite number"
    # RewardBench v2 style: lists of answers (strings), every chosen beats every rejected.
    if isinstance(chosen, list) and not _is_messages(chosen) and all(isinstance(c, str) for c in chosen) and \
            isinstance(rejected, list) and not _is_messages(rejected) and all(isinstance(r, str) for r in rejected):
        if prompt is None:
            return "lists of answers need a prompt"
        return [Pair(prompt, c, r, float(margin), {**meta, "chosen_index": i, "rejected_index": j})
                for i, c in enumerate(chosen) for j, r in enumerate(rejected)]
    if prompt is None:
        if not (_is_messages(chosen) and _is_messages(rejected)):
            return f"no field {name['prompt']!r} and chosen/rejected are not conversations"
        prompt, chosen, rejected = _split_implicit(chosen, rejected)
        if not prompt:
            return "implicit prompt: the two conversations share no leading messages"
    for key, value in (("prompt", prompt), ("chosen", chosen), ("rejected", rejected)):
        if not (isinstance(value, str) or _is_messages(value)):
            return f"{key} is {type(value).__name__}, expected text or chat messages"
    tie = record.get(name["tie"], False)
    if not isinstance(tie, bool):
        return f"tie {tie!r} is not true or false"
    return [Pair(prompt, chosen, rejected, float(margin), meta, tie)]


def read_pairs(path: str | Path, fields: dict[str, str] | None = None, on_bad: str = "skip") -> tuple[list[Pair], DataReport]:
    """Every pair in ``path`` and the report of what was left out. ``fields`` maps payoff's names
    to the file's (``{"prompt": "question", "chosen": "good", "rejected": "bad"}``)."""
    if on_bad not in ("skip", "fail"):
        raise ValueError("on_bad must be 'skip' or 'fail'")
    path = Path(path)
    if not path.exists():
        raise PreferenceDataError(f"{path}: no such file or folder")
    report = DataReport(str(path))
    pairs: list[Pair] = []
    try:
        rows = list(table_rows(path))
    except ValueError as error:
        raise PreferenceDataError(str(error)) from None
    for row in rows:
        report.rows += 1
        where, record = row.where, row.record
        if record is None:
            report.skip("unreadable", row.problem or where)
            continue
        found = _pairs_of(record, fields or {})
        if isinstance(found, str):
            report.skip(f"malformed: {found}", where)
            continue
        for pair in found:
            if _empty(pair.chosen) or _empty(pair.rejected):
                report.skip("empty side", where)
            elif pair.chosen == pair.rejected:
                report.skip("identical sides", where)
            else:
                pair.meta.setdefault("source", where)
                pairs.append(pair)
    report.close(len(pairs), on_bad, "pairs")
    return pairs, report
