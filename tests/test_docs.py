"""Every ```python block in the docs runs, so the documentation stays true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCKS = [
    pytest.param(block, id=f"{path.relative_to(DOCS)}#{index}")
    for path in sorted(DOCS.rglob("*.md"))
    for index, block in enumerate(re.findall(r"```python\n(.*?)```", path.read_text(), re.DOTALL))
]


def test_the_docs_have_examples() -> None:
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("block", BLOCKS)
def test_doc_example_runs(block: str) -> None:
    exec(compile(block, "<doc example>", "exec"), {"__name__": "__doc_example__"})


def test_every_training_config_key_is_documented() -> None:
    from pydantic import BaseModel

    from payoff.rl.config import TrainConfig

    def keys(model, prefix=""):
        for name, field in model.model_fields.items():
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                yield from keys(field.annotation, prefix + name + ".")
            else:
                yield prefix + name

    text = (Path(__file__).resolve().parent.parent / "docs" / "train.md").read_text()
    missing = [key for key in keys(TrainConfig) if f"| `{key}` |" not in text]
    assert missing == []


def test_every_reward_model_config_key_is_documented() -> None:
    from pydantic import BaseModel

    from payoff.rm.config import RMTrainConfig

    def keys(model, prefix=""):
        for name, field in model.model_fields.items():
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                yield from keys(field.annotation, prefix + name + ".")
            else:
                yield prefix + name

    text = (Path(__file__).resolve().parent.parent / "docs" / "rm.md").read_text()
    missing = [key for key in keys(RMTrainConfig) if f"| `{key}` |" not in text]
    assert missing == []


def test_every_dpo_config_key_is_documented() -> None:
    from pydantic import BaseModel

    from payoff.dpo.config import DPOConfig

    def keys(model, prefix=""):
        for name, field in model.model_fields.items():
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                yield from keys(field.annotation, prefix + name + ".")
            else:
                yield prefix + name

    text = (Path(__file__).resolve().parent.parent / "docs" / "dpo.md").read_text()
    assert [key for key in keys(DPOConfig) if f"| `{key}` |" not in text] == []


def test_every_prm_config_key_is_documented() -> None:
    from pydantic import BaseModel

    from payoff.prm.config import PRMConfig

    def keys(model, prefix=""):
        for name, field in model.model_fields.items():
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                yield from keys(field.annotation, prefix + name + ".")
            else:
                yield prefix + name

    text = (Path(__file__).resolve().parent.parent / "docs" / "prm.md").read_text()
    assert [key for key in keys(PRMConfig) if f"| `{key}` |" not in text] == []
