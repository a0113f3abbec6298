"""The page ships in the wheel: every file under payoff/view/static is matched by the package data
pyproject.toml declares (a file it misses would be a 404 in an installed payoff), and the
vendored library keeps its licence."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from payoff.view.app import FILES, STATIC

ROOT = Path(__file__).resolve().parents[2]


def test_every_static_file_is_package_data_and_served() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["payoff.view"]
    files = [path.relative_to(STATIC.parent).as_posix() for path in STATIC.rglob("*") if path.is_file()]
    assert [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)] == []
    assert {name for name in FILES} | {"index.html", "uplot/VERSION"} == {f.removeprefix("static/") for f in files}
    assert "MIT License" in (STATIC / "uplot" / "LICENSE").read_text() and "1.6.32" in (STATIC / "uplot" / "VERSION").read_text()
