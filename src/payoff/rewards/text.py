"""Rewards on the completion's text: normalised exact match and the R1 think/answer format."""

from __future__ import annotations

import re
import string
import unicodedata

from payoff.core import Outcome, Sample, reward
from payoff.rewards.common import after_reasoning, references

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_EDGE_PUNCTUATION = string.punctuation + "“”‘’«»。，．"


def normalize_text(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed, surrounding punctuation and quotes removed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACES.sub(" ", text).strip().strip(_EDGE_PUNCTUATION).strip()


def answer_text(completion: str) -> str:
    """The content of the last ``<answer>…</answer>`` if there is one, else what follows the last
    ``</think>``, else the whole completion."""
    tagged = _ANSWER_TAG.findall(completion)
    if tagged:
        return tagged[-1]
    return after_reasoning(completion)


@reward(name="exact_match")
def exact_match(sample: Sample) -> Outcome:
    """Normalised string match of the answer against the reference (or any of a list of references).

    The answer is the last ``<answer>`` block, else the text after ``</think>``, else the whole
    completion. Abstains when
    there is no usable reference.
    """
    golds = [normalize_text(r) for r in references(sample)]
    if not golds:
        return Outcome.abstain("no reference to compare with")
    predicted = normalize_text(answer_text(sample.completion))
    matched = predicted in golds
    return Outcome.ok(float(matched), predicted=predicted[:200], reference=golds[0][:200])


_THINK_OPEN = re.compile(r"<think>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)
_THINK_FORMAT = re.compile(r"^\s*<think>(?P<thought>.*?)</think>(?P<answer>.*)$", re.DOTALL | re.IGNORECASE)


@reward(name="think_format")
def think_format(sample: Sample) -> Outcome:
    """R1-style format: exactly one non-empty ``<think>…</think>`` block first, then a non-empty answer.

    DeepSeek-R1 (2025) rewards this structure alongside correctness. Components record each part
    so a policy that learns only half the format is visible in the logs.
    """
    text = sample.completion
    opens, closes = len(_THINK_OPEN.findall(text)), len(_THINK_CLOSE.findall(text))
    match = _THINK_FORMAT.match(text)
    thought = bool(match and match.group("thought").strip())
    answer = bool(match and match.group("answer").strip())
    single = opens == 1 and closes == 1
    passed = bool(match) and single and thought and answer
    components = {"single_think_block": float(single), "thought_nonempty": float(thought), "answer_nonempty": float(answer)}
    return Outcome.ok(float(passed), components)
