"""One step splitter, used by labelling, training, the `prm` reward and evaluation.

``split_steps(text, mode)``: ``"double_newline"`` (default: steps are separated by blank
lines), ``"step_markers"`` ("Step 1:", "Step 2:" ... start steps; text before the first marker is
its own step when not blank), or any other string: a custom separator. Empty steps are dropped.

``encode_steps`` renders prompt + steps as token ids, each step followed by ``separator`` (the
text the PRM reads its score after, "\\n\\n" by default), and returns the position of each step's
last token: the PRM's score for step k is read there. Steps are tokenised one by one, so the same
steps give the same positions at training and at scoring time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_MARKER = re.compile(r"(?im)^\s*step\s*\d+\s*[:.)]")


def split_steps(text: str, mode: str = "double_newline") -> list[str]:
    if mode == "double_newline":
        parts = re.split(r"\n\s*\n", text)
    elif mode == "step_markers":
        starts = [m.start() for m in _MARKER.finditer(text)]
        if not starts:
            return [text.strip()] if text.strip() else []
        parts = ([text[: starts[0]]] if starts[0] > 0 else []) + [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]
    else:
        parts = text.split(mode)
    return [part.strip() for part in parts if part.strip()]


def step_ends(text: str, steps: Sequence[str]) -> list[int]:
    """The character offset in ``text`` just after each of its ``split_steps`` (found in order),
    which is where a step's last token is: `payoff rl train` maps these to tokens for step rewards."""
    ends, cursor = [], 0
    for step in steps:
        found = text.find(step, cursor)
        found = cursor if found < 0 else found
        cursor = found + len(step)
        ends.append(cursor)
    return ends


def encode_steps(tokenizer: Any, prompt: Any, steps: Sequence[str], separator: str = "\n\n", chat_template: bool = True,
                 max_length: int = 1024) -> tuple[list[int], list[int]]:
    """(token ids, index of each step's last token). Steps beyond ``max_length`` are cut off and
    have no position (the caller sees fewer positions than steps)."""
    if chat_template:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        head = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        head = str(prompt)
    ids = list(tokenizer(head, add_special_tokens=False)["input_ids"]) if head else []
    positions = []
    for step in steps:
        piece = tokenizer(step + separator, add_special_tokens=False)["input_ids"]
        if len(ids) + len(piece) > max_length:
            break
        ids += piece
        positions.append(len(ids) - 1)
    return ids or [int(tokenizer.eos_token_id)], positions
