"""The byte-offset index of a JSONL file: every line accounted for, rows read back from disk
exactly, filters on the index arrays, groups with their advantages."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from payoff.view import lines as lines_module
from payoff.view.lines import SampleFile
from payoff.view.rows import Filters, group_view, grpo_advantages, matching, summary


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode())
    return path


def rows_file(tmp_path: Path) -> Path:
    rows = [{"step": 1 + i // 4, "group": f"g{i // 2}", "completion": f"answer {i} " + "é" * (30 * i), "reward": i / 10,
             "status": "ok" if i % 3 else "error", "components": {"math": float(i % 2)} if i % 5 else {"math": 1.0, "late": 0.5}}
            for i in range(12)]
    rows[7]["flags"] = ["length spike"]
    rows[7]["reward"] = float("nan")  # what json.dumps writes for a NaN: read, not a crash
    return write(tmp_path / "s.jsonl", "".join(json.dumps(r) + "\n" for r in rows))


def test_every_line_is_a_row_read_back_exactly_even_across_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lines_module, "BLOCK", 37)  # lines straddle every block boundary
    path = write(tmp_path / "mixed.jsonl", '{"a": 1}\n\n[1, 2]\nnot json\n{"b": "x\\ny"}\r\n{"c": 3}')  # no final newline
    index = SampleFile(path).start().wait(10)
    assert index.done and index.count == 5  # the blank line is no row
    assert index.row(0) == {"a": 1} and index.row(3) == {"b": "x\ny"} and index.row(4) == {"c": 3}
    assert index.row(1)["status"] == "unreadable" and "list" in index.row(1)["info"]["error"]
    assert index.row(2)["status"] == "unreadable" and index.row(2)["raw"] == "not json"
    assert [index.status[i] for i in range(5)].count(lines_module.STATUS_CODE["unreadable"]) == 2
    with pytest.raises(IndexError):
        index.row(5)


def test_filters_narrow_on_the_index(tmp_path: Path) -> None:
    index = SampleFile(rows_file(tmp_path)).start().wait(10)
    assert index.count == 12 and sorted(index.components) == ["late", "math"]
    assert math.isnan(index.components["late"][1]) and index.components["late"][5] == 0.5  # a late component: NaN before
    assert matching(index, Filters(step=2)) == [4, 5, 6, 7]
    assert matching(index, Filters(status={"error"})) == [0, 3, 6, 9]
    assert matching(index, Filters(step=2, status={"ok"})) == [4, 5, 7]
    assert matching(index, Filters(group="g3")) == [6, 7]
    assert matching(index, Filters(low=0.55, high=0.9)) == [6, 8, 9]  # row 7's NaN reward is in no range
    assert matching(index, Filters(component="math", low=1.0)) == [0, 1, 3, 5, 7, 9, 10, 11]
    assert matching(index, Filters(flagged=True)) == [7]
    assert matching(index, Filters(flagged=True), warned_steps={3}) == [7, 8, 9, 10, 11]
    with pytest.raises(ValueError, match="no component 'nope'"):
        matching(index, Filters(component="nope", low=0))
    with pytest.raises(ValueError, match="status must be among"):
        Filters.parse({"status": "fine"})
    with pytest.raises(ValueError, match="lo must be a number"):
        Filters.parse({"lo": "low"})
    assert Filters.parse({"step": "3", "status": "ok,timeout", "flagged": "1"}) == Filters(step=3, status={"ok", "timeout"}, flagged=True)


def test_summary_clips_and_group_advantages(tmp_path: Path) -> None:
    index = SampleFile(rows_file(tmp_path)).start().wait(10)
    line = summary(11, index.row(11))
    assert line["answer"].endswith("…") and len(line["answer"]) == 241 and line["group"] == "g5"
    group = group_view(index, "g4")  # rows 8 (ok, 0.8) and 9 (error)
    assert [m["index"] for m in group["members"]] == [8, 9]
    assert group["members"][0]["advantage"] == 0.0 and group["members"][1]["advantage"] is None
    assert grpo_advantages([1.0, 0.0, None]) == pytest.approx([1.0, -1.0, None], abs=1e-5)
    assert group_view(index, "no such group")["members"] == []


def test_rows_appended_later_are_indexed_and_an_unfinished_line_is_read_again(tmp_path: Path) -> None:
    path = write(tmp_path / "live.jsonl", '{"step": 1}\n{"step": 2, "status": "ok"')  # a trainer mid-write
    index = SampleFile(path).start().wait(10)
    assert index.count == 2 and index.row(1)["status"] == "unreadable"
    index.catch_up()  # nothing new: nothing done
    assert index.count == 2
    with open(path, "a") as handle:
        handle.write(', "reward": 0.5}\n{"step": 3, "group": "g"}\n')
    index.catch_up()
    index.wait(10)
    assert index.count == 3 and index.row(1) == {"step": 2, "status": "ok", "reward": 0.5} and index.row(2)["group"] == "g"
    assert list(index.step) == [1, 2, 3] and 1 not in index.problems and index.group_members("g") == [2]
    path.write_text('{"step": 1}\n')
    index.catch_up()
    assert "shrank" in index.progress()["error"] and index.count == 3
