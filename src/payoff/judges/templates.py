"""Judge templates: text files with a ``version:`` first line and ``{placeholders}``; the
built-ins live in ``payoff/judges/templates/``; a user passes ``template = "path/to/file.txt"``.
The version is part of every cached judgment's key, so editing a template invalidates its cache.
Verdicts are parsed strictly: anything but the asked-for form is an ``error`` outcome."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

BUILTIN = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class Template:
    name: str
    version: str
    text: str

    def render(self, **fields: object) -> str:
        try:
            return self.text.format(**fields)
        except KeyError as missing:
            raise ValueError(f"template {self.name} needs the field {missing}") from None


def load_template(name_or_path: str) -> Template:
    path = Path(name_or_path)
    if not path.is_file():
        path = BUILTIN / f"{name_or_path}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"no judge template {name_or_path!r} (built-ins: {', '.join(p.stem for p in sorted(BUILTIN.glob('*.txt')))})")
    first, _, body = path.read_text().partition("\n")
    match = re.fullmatch(r"version:\s*(\S+)\s*", first)
    if not match:
        raise ValueError(f"{path}: the first line must be 'version: N'")
    return Template(path.stem, match.group(1), body.strip() + "\n")


class VerdictError(ValueError):
    """The judge's reply is not in the asked-for form."""


def parse_yes_no(text: str) -> bool:
    match = re.fullmatch(r"\W*(yes|no)\W*", text.strip(), re.IGNORECASE)
    if not match:
        raise VerdictError(f"expected Yes or No, got {text.strip()[:80]!r}")
    return match.group(1).lower() == "yes"


def parse_score(text: str, scale: int) -> int:
    match = re.fullmatch(r"\W*(?:score\s*[:=]?\s*)?(\d+)\s*(?:/\s*\d+)?\W*", text.strip(), re.IGNORECASE)
    if not match or not 1 <= int(match.group(1)) <= scale:
        raise VerdictError(f"expected 'Score: N' with N in 1..{scale}, got {text.strip()[:80]!r}")
    return int(match.group(1))


def parse_choice(text: str) -> str:
    match = re.fullmatch(r"\W*(?:response\s*)?([AB])\W*", text.strip(), re.IGNORECASE)
    if not match:
        raise VerdictError(f"expected A or B, got {text.strip()[:80]!r}")
    return match.group(1).upper()
