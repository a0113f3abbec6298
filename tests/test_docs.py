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


def _config_keys(model, prefix: str = ""):
    from pydantic import BaseModel

    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from _config_keys(field.annotation, prefix + name + ".")
        else:
            yield prefix + name


@pytest.mark.parametrize(("module", "config", "page"), [
    ("payoff.rl.config", "TrainConfig", "train.md"), ("payoff.rm.config", "RMTrainConfig", "rm.md"),
    ("payoff.dpo.config", "DPOConfig", "dpo.md"), ("payoff.prm.config", "PRMConfig", "prm.md"),
])
def test_every_config_key_is_documented(module: str, config: str, page: str) -> None:
    import importlib

    model = getattr(importlib.import_module(module), config)
    text = (DOCS / page).read_text()
    missing = [key for key in _config_keys(model) if f"| `{key}` |" not in text]
    assert missing == []
