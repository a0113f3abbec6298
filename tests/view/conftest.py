"""One set of real files for every viewer test: a `payoff rl train` run on the tiny model, scored
episodes, rescore, audit and eval reports (tests/view/fixtures.py), built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.view import fixtures


@pytest.fixture(scope="session")
def made(tmp_path_factory) -> dict[str, Path]:
    built = os.environ.get("PAYOFF_VIEW_FIXTURES")  # a folder `python -m tests.view.fixtures DIR` made: reuse it
    if built and (Path(built) / "run" / "samples.jsonl").exists():
        return fixtures.paths(Path(built))
    return fixtures.build_all(tmp_path_factory.mktemp("view"))
