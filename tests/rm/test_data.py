"""Preference files in the formats users have, and every bad row reported with its line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from payoff.tasks.preferences import PreferenceDataError, read_pairs


def write(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_trl_plain_and_conversational_and_implicit_prompt(tmp_path: Path) -> None:
    user = {"role": "user", "content": "2+2?"}
    rows = [
        {"prompt": "2+2?", "chosen": "4", "rejected": "5", "margin": 1.5},
        {"prompt": [user], "chosen": [{"role": "assistant", "content": "4"}], "rejected": [{"role": "assistant", "content": "5"}]},
        {"chosen": [user, {"role": "assistant", "content": "4"}], "rejected": [user, {"role": "assistant", "content": "5"}]},
    ]
    pairs, report = read_pairs(write(tmp_path / "p.jsonl", rows))
    assert report.pairs == 3 and not report.skipped
    assert pairs[0].margin == 1.5 and pairs[0].prompt == "2+2?"
    assert pairs[2].prompt == [user] and pairs[2].chosen == [{"role": "assistant", "content": "4"}]


def test_rewardbench_rows_and_v2_lists_and_a_field_map(tmp_path: Path) -> None:
    rows = [{"question": "q", "good": "a", "bad": "b", "subset": "chat"},
            {"question": "q2", "good": ["a1"], "bad": ["b1", "b2", "b3"], "id": 7}]
    pairs, report = read_pairs(write(tmp_path / "rb.jsonl", rows), {"prompt": "question", "chosen": "good", "rejected": "bad"})
    assert len(pairs) == 4 and pairs[0].meta["subset"] == "chat"
    assert [p.rejected for p in pairs[1:]] == ["b1", "b2", "b3"] and pairs[1].meta["id"] == 7


def test_parquet_and_a_datasets_folder(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Dataset

    rows = [{"prompt": "p", "chosen": "yes", "rejected": "no"}] * 3
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "p.parquet")
    assert len(read_pairs(tmp_path / "p.parquet")[0]) == 3
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    assert len(read_pairs(tmp_path / "ds")[0]) == 3


def test_malformed_rows_are_reported_line_by_line_and_the_rest_kept(tmp_path: Path) -> None:
    rows = [
        {"prompt": "p", "chosen": "good", "rejected": "bad"},  # 1 kept
        "{not json",  # 2
        {"prompt": "p", "chosen": "same", "rejected": "same"},  # 3
        {"prompt": "p", "chosen": "  ", "rejected": "x"},  # 4
        {"prompt": "p", "chosen": "a"},  # 5
        {"prompt": "p", "chosen": "a", "rejected": "b", "margin": "big"},  # 6
        [1, 2],  # 7
        {"prompt": "p", "chosen": 3, "rejected": "b"},  # 8
        {"prompt": "p", "chosen": "fine", "rejected": "worse"},  # 9 kept
    ]
    pairs, report = read_pairs(write(tmp_path / "bad.jsonl", rows))
    assert [p.chosen for p in pairs] == ["good", "fine"]
    assert report.rows == 9 and sum(report.skipped.values()) == 7
    assert report.skipped["identical sides"] == 1 and report.examples["identical sides"] == ["line 3"]
    assert report.skipped["empty side"] == 1 and report.examples["empty side"] == ["line 4"]
    assert any("line 2" in e for e in report.examples["unreadable"]) and any("line 7" in e for e in report.examples["unreadable"])
    assert report.examples["malformed: no field 'rejected'"] == ["line 5"]
    assert "line 6" in report.examples["malformed: margin 'big' is not a finite number"]
    assert "line 8" in report.examples["malformed: chosen is int, expected text or chat messages"]
    text = report.describe()
    assert "2 pairs from 9 rows" in text and "line 3" in text
    with pytest.raises(PreferenceDataError, match="identical sides"):
        read_pairs(tmp_path / "bad.jsonl", on_bad="fail")


def test_a_file_with_no_usable_pair_says_so(tmp_path: Path) -> None:
    with pytest.raises(PreferenceDataError, match="no usable pairs"):
        read_pairs(write(tmp_path / "none.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "a"}]))
    with pytest.raises(PreferenceDataError, match="no such file"):
        read_pairs(tmp_path / "missing.jsonl")
