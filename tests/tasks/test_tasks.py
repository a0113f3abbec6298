"""Tasks: the arithmetic family, the reasoning-gym adapter (scored inside engine workers) and
the file loader (JSONL, Parquet, datasets folder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from payoff.engine import Engine
from payoff.tasks import arithmetic, load_rows, reasoning_gym_rows
from payoff.tasks.arithmetic import LEVELS
from payoff.tasks.reasoning_gym import reasoning_gym_reward


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_arithmetic_levels_have_right_answers_and_are_seeded(level: int) -> None:
    rows = arithmetic(50, seed=7, level=level)
    assert rows == arithmetic(50, seed=7, level=level)
    assert rows != arithmetic(50, seed=8, level=level)
    (low, high), ops, count = LEVELS[level]
    for row in rows:
        expression = row["prompt"].removeprefix("What is ").removesuffix("? Answer with only the number.")
        tokens = expression.split()
        numbers = [int(t) for t in tokens[::2]]
        assert len(numbers) == count and all(low <= n <= high for n in numbers)
        assert all(op in ops for op in tokens[1::2])
        assert int(row["reference"]) == eval(expression)  # noqa: S307 - our own generated text
        assert row["meta"]["level"] == level


def test_arithmetic_rejects_unknown_levels() -> None:
    with pytest.raises(ValueError, match="level 9 does not exist"):
        arithmetic(3, level=9)


def test_reasoning_gym_rows_score_in_engine_workers() -> None:
    rows = reasoning_gym_rows("basic_arithmetic", 6, seed=3)
    samples = []
    for row in rows:
        samples.append({"completion": f"<answer>{row['reference']}</answer>", **row})
        samples.append({"completion": "<answer>definitely not it</answer>", **row})
    with Engine(reasoning_gym_reward, workers=2) as engine:
        outcomes = engine.score(samples)
    assert [o.score for o in outcomes] == [1.0, 0.0] * 6
    bare = reasoning_gym_reward.score_one(__import__("payoff.core", fromlist=["Sample"]).Sample(completion="1"))
    assert bare.status == "abstain"


def test_load_rows_maps_fields_from_jsonl_parquet_and_datasets(tmp_path: Path) -> None:
    records = [{"question": f"q{i}", "answer": str(i), "source": "s"} for i in range(5)]
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Dataset

    pq.write_table(pa.Table.from_pylist(records), tmp_path / "rows.parquet")
    Dataset.from_list(records).save_to_disk(str(tmp_path / "ds"))
    for path in (jsonl, tmp_path / "rows.parquet", tmp_path / "ds"):
        rows = load_rows(path, prompt="question", reference="answer", meta=["source"])
        assert [r["prompt"] for r in rows] == [f"q{i}" for i in range(5)]
        assert rows[2]["reference"] == "2" and rows[2]["meta"]["source"] == "s"
    with pytest.raises(ValueError, match="row 0: no field 'problem'"):
        load_rows(jsonl, prompt="problem")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "reference": "1"}\n{not json\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        load_rows(bad)
