"""A JSONL file of samples, paged from disk: a byte-offset index of its lines and, per line, the few
fields the viewer filters on, in flat arrays (a 1 GB file of 500,000 rows costs a few tens of MB,
not the file's size).

The index is built by one background thread reading the file in blocks, so the first page is
served before the whole file is read; `SampleFile.count` grows while it runs and `done` says when
it is finished. A line that is not a JSON object is kept as a row whose status is ``unreadable``
(the page shows why), so every line of the file is accounted for.
"""

from __future__ import annotations

import json
import math
import threading
import time
from array import array
from pathlib import Path
from typing import Any

try:  # orjson parses the index several times faster; the standard library is the fallback
    import orjson

    _loads = orjson.loads
except ImportError:  # pragma: no cover - the serve extra installs it
    _loads = json.loads

STATUSES = ("ok", "abstain", "error", "timeout", "unreadable", "none")
STATUS_CODE = {name: code for code, name in enumerate(STATUSES)}
MAX_COMPONENTS = 64  # components indexed for range filters; a row's others are still shown
BLOCK = 8 * 1024 * 1024
NAN = float("nan")


def loads(raw: bytes) -> Any:
    """One line's JSON; NaN and Infinity (which `json.dumps` writes) through the standard library."""
    try:
        return _loads(raw)
    except ValueError:
        return json.loads(raw.decode("utf-8", errors="replace"), strict=False)


def number(value: Any) -> float:
    """A JSON number as a float; anything else (None, a bool, a string) as NaN."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else NAN


def status_of(row: dict[str, Any]) -> str:
    status = row.get("status")
    return status if status in STATUS_CODE else "none"


def reward_of(row: dict[str, Any]) -> float:
    return number(row.get("reward", row.get("score")))


def flags_of(row: dict[str, Any]) -> list[Any]:
    """What a monitor flagged on this row: ``flags`` (or ``monitor_flags``), at the top or in ``meta``."""
    meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
    for holder in (row, meta):
        for key in ("flags", "monitor_flags"):
            value = holder.get(key)
            if value:
                return value if isinstance(value, list) else [value]
    return []


def group_key(row: dict[str, Any]) -> str | None:
    """The row's prompt group: ``group``, else (step, prompt) as `payoff rescore` reads a trainer's rows."""
    if row.get("group") is not None:
        return str(row["group"])
    if "step" in row and "prompt" in row:
        return json.dumps([row.get("step"), row.get("prompt")], default=str)[:500]
    return None


class SampleFile:
    """The index of one JSONL file. ``offsets[i]`` is where row i starts; ``step``, ``status``,
    ``reward``, ``group``, ``flagged``, ``episode`` and ``components[name]`` hold row i's fields."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.size = self.path.stat().st_size
        self.offsets = array("q")
        self.ends = array("q")
        self.step = array("q")
        self.status = array("b")
        self.reward = array("d")
        self.flagged = array("b")
        self.episode = array("b")
        self.group = array("l")
        self.groups: list[str] = []
        self._group_ids: dict[str, int] = {}
        self.components: dict[str, array] = {}
        self.problems: dict[int, str] = {}
        self.read_bytes = 0
        self.done = False
        self.error: str | None = None
        # Requests being answered: the indexer steps aside for them (it holds the GIL while it parses,
        # and a request handed the GIL back and forth with it would wait milliseconds at each step).
        self.busy = 0
        self._resume = 0  # where the next pass reads from: just past the last newline read
        self._tail = False  # the last row is a line with no newline yet (a run may still be writing it)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._build, name=f"index {self.path.name}", daemon=True)

    def start(self) -> SampleFile:
        self._thread.start()
        return self

    def catch_up(self) -> None:
        """Index what was appended since the last pass (a run still training keeps writing its
        samples): a new pass from the last newline, the unterminated last row read again whole."""
        with self._lock:
            if not self.done:
                return
            try:
                size = self.path.stat().st_size
            except OSError:
                return
            if size < self.size:
                self.error = f"{self.path} shrank from {self.size} to {size} bytes (rewritten?): restart payoff view to read it again"
                return
            if size == self.size:
                return
            if self._tail:
                self._drop_last()
            self.size, self.done = size, False
            self._thread = threading.Thread(target=self._build, name=f"index {self.path.name}", daemon=True)
            self._thread.start()

    def _drop_last(self) -> None:
        index = self.count - 1
        self.flagged.pop()  # first: `count` no longer covers the row
        for values in (self.offsets, self.ends, self.step, self.status, self.reward, self.episode, self.group):
            values.pop()
        for column in self.components.values():
            column.pop()
        self.problems.pop(index, None)
        self._tail = False

    def wait(self, timeout: float | None = None) -> SampleFile:
        self._thread.join(timeout)
        return self

    @property
    def count(self) -> int:
        """Rows indexed so far (every array holds at least this many)."""
        return len(self.flagged)

    # -- building -----------------------------------------------------------------------------------------
    def _build(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                start, carry = self._resume, b""
                handle.seek(start)
                while True:
                    block = handle.read(BLOCK)
                    if not block:
                        break
                    data = carry + block
                    base = start - len(carry)
                    position = 0
                    while True:
                        end = data.find(b"\n", position)
                        if end < 0:
                            break
                        self._add(data[position:end], base + position, base + end)
                        position = end + 1
                        while self.busy > 0:
                            time.sleep(0.002)
                    carry = data[position:]
                    start += len(block)
                    self.read_bytes = start
                    self._resume = start - len(carry)
                if carry.strip():
                    self._add(carry, start - len(carry), start)
                    self._tail = self.count > 0 and self.ends[-1] == start
        except OSError as error:
            self.error = f"{self.path}: {error}"
        finally:
            self.done = True

    def _add(self, raw: bytes, begin: int, end: int) -> None:
        if not raw.strip():
            return  # blank lines are no rows
        index = self.count
        try:
            row = loads(raw)
            if not isinstance(row, dict):
                raise ValueError(f"a JSON {type(row).__name__}, not an object")
        except (ValueError, RecursionError) as error:
            row = None
            self.problems[index] = f"not a JSON object: {str(error)[:200]}"
        self.offsets.append(begin)
        self.ends.append(end)
        if row is None:
            for values, value in ((self.step, -1), (self.status, STATUS_CODE["unreadable"]), (self.reward, NAN),
                                  (self.group, -1), (self.episode, 0)):
                values.append(value)
        else:
            step = row.get("step")
            self.step.append(step if isinstance(step, int) and not isinstance(step, bool) else -1)
            self.status.append(STATUS_CODE[status_of(row)])
            self.reward.append(reward_of(row))
            self.group.append(self._group_id(group_key(row)))
            self.episode.append(int(isinstance(row.get("messages"), list)))
            components = row.get("components")
            for name, value in (components.items() if isinstance(components, dict) else ()):
                column = self.components.get(name)
                if column is None and len(self.components) < MAX_COMPONENTS:
                    column = self.components[name] = array("d", [NAN]) * index
                if column is not None:
                    column.append(number(value))
        for column in self.components.values():  # rows without this component hold NaN
            if len(column) == index:
                column.append(NAN)
        self.flagged.append(int(row is not None and bool(flags_of(row))))  # last: `count` counts complete rows

    def _group_id(self, key: str | None) -> int:
        if key is None:
            return -1
        found = self._group_ids.get(key)
        if found is None:
            found = self._group_ids[key] = len(self.groups)
            self.groups.append(key)
        return found

    # -- reading ------------------------------------------------------------------------------------------
    def raw(self, index: int) -> bytes:
        with open(self.path, "rb") as handle:
            handle.seek(self.offsets[index])
            return handle.read(self.ends[index] - self.offsets[index])

    def row(self, index: int) -> dict[str, Any]:
        """Row `index` read from disk; an unreadable line as ``{"status": "unreadable", ...}``."""
        if not 0 <= index < self.count:
            raise IndexError(f"no row {index} (the file has {self.count} rows indexed)")
        if index in self.problems:
            return {"status": "unreadable", "info": {"error": self.problems[index]}, "raw": self.raw(index)[:2000].decode("utf-8", "replace")}
        return loads(self.raw(index))

    def rows(self, indices: list[int]) -> list[dict[str, Any]]:
        return [self.row(i) for i in indices]

    def group_members(self, key: str) -> list[int]:
        gid = self._group_ids.get(key)
        if gid is None:
            return []
        n = self.count
        return [i for i, g in enumerate(self.group[:n]) if g == gid]

    def steps(self) -> list[int]:
        return sorted({s for s in self.step[: self.count] if s >= 0})

    def progress(self) -> dict[str, Any]:
        return {"rows": self.count, "done": self.done, "read_bytes": self.read_bytes, "size": self.size, "error": self.error,
                "components": sorted(self.components), "steps": len(self.steps()) if self.done else None}


def finite(value: float) -> float | None:
    return None if math.isnan(value) else value
