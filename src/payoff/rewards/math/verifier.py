"""The math answer reward: extract, parse, compare; 1 or 0, abstain when the reference is unusable.

Hack policy (all on by default, each an option of `MathVerifier`):
- an empty answer (``\\boxed{}``) scores 0;
- an answer that copies most of the prompt back scores 0;
- boxes elsewhere in the completion that hold two or more other distinct answers
  (``\\boxed{1} ... \\boxed{2} ... \\boxed{3}``) score 0: answer spam (``max_other_boxes``);
- a list of candidates ("1 or 2 or 3", every option) never matches a single-valued reference,
  because a list only equals a list (see `compare`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from payoff.core import Outcome, Reward, Sample
from payoff.rewards.common import after_reasoning
from payoff.rewards.math.closing import claim_predicate
from payoff.rewards.math.compare import CompareOptions, equivalent
from payoff.rewards.math.extract import Extraction, extract_answer, extract_reference
from payoff.rewards.math.factors import asks_to_factor, is_factored, same_factors
from payoff.rewards.math.parse import Node, ParseError, parse
from payoff.rewards.math.prose import NO, YES, is_yes_no_question, prose_words
from payoff.rewards.math.references import PROSE_CUES, read_reference
from payoff.rewards.math.tokens import TokenError, kept, normalize


@dataclass(frozen=True)
class MathOptions:
    last_number: bool = True
    percent_fraction: bool = False
    rounding: bool = True
    unordered_lists: bool = True
    max_other_boxes: int = 1
    reject_prompt_copy: bool = True
    prose_references: bool = True  # read references stated in words ("0 is the only possible value")
    factor_form: bool = True  # "factor ..." tasks: compare factors, not the expanded value (see `factors`)
    after_reasoning: bool = True  # read the answer after the last </think>: the reasoning's tries are not answers


# Extraction rules that find an answer the completion never marked as one.
IMPLICIT_RULES = {"last_number", "last_expression", "conclusion", "claim", "latex_math", "whole_completion"}


_OPERATION = re.compile(r"[\w})\]]\s*[-+*/^]|\\[a-zA-Z]")  # an operation, not just a signed number
# Plain numbers joined by arithmetic operators (squashed: no spaces), and the one such form that is
# a value: a fraction of two integers.
_UNEVALUATED = re.compile(r"[-+]?\(?\d[\d.,]*\)?(?:(?:[-+*/^x×÷]|\\times|\\cdot|\\div)\(?[-+]?\d[\d.,]*\)?)+")
_FRACTION = re.compile(r"[-+]?\d+/\d+")


def parse_answer(text: str) -> tuple[Node | None, str, str | None]:
    """(tree or None, normalised text, parse error). The answers of a group of samples repeat (one
    reference, answers that agree) and one call reads the same answer more than once, so short
    texts are kept: a tree is nested tuples of immutable values, safe to share."""
    try:
        return _parse_cached(text) if kept(text) else _parse(text)
    except RecursionError as error:  # depends on how deep the caller's stack is: answered, never kept
        return None, normalize(text), str(error) or type(error).__name__


@functools.lru_cache(maxsize=2048)
def _parse_cached(text: str) -> tuple[Node | None, str, str | None]:
    return _parse(text)


def _parse(text: str) -> tuple[Node | None, str, str | None]:
    normal = normalize(text)
    try:
        return parse(normal), normal, None
    except (ParseError, TokenError, ValueError, ZeroDivisionError) as error:
        return None, normal, str(error) or type(error).__name__


def squash(text: str) -> str:
    """Lower case, all whitespace removed: the form answers are compared in before parsing."""
    return "".join(text.split()).lower()


class MathVerifier:
    def __init__(self, options: MathOptions = MathOptions()) -> None:
        self.options = options
        self.compare_options = CompareOptions(
            percent_fraction=options.percent_fraction, rounding=options.rounding, unordered_lists=options.unordered_lists
        )

    def verify(self, completion: str, reference: Any, prompt: Any = "") -> Outcome:
        references = reference if isinstance(reference, list) else [reference]
        golds = []
        unread: list[str] = []
        for ref in references:
            if ref is None or not str(ref).strip():
                continue
            texts = self._reference_texts(str(ref), unread)
            if not texts:  # unreadable prose: only the same words written back can match it
                extraction = Extraction(str(ref).strip(), "reference")
                golds.append((None, normalize(extraction.text), extraction))
            for text in texts:
                extraction = extract_reference(text)
                tree, normal, _ = parse_answer(extraction.text)
                golds.append((tree, normal, extraction))
        if not golds:
            return Outcome.abstain("no reference")
        if all(tree is None and not normal for tree, normal, _ in golds):
            return Outcome.abstain("reference is empty")
        polarity = any(normal.lower() in (YES, NO) for _, normal, _ in golds) and is_yes_no_question(prompt)
        if self.options.after_reasoning:
            answer = after_reasoning(completion)  # the drafts and tries inside <think> are not the answer
            if answer != completion and not answer.strip():
                return Outcome.ok(0.0, rule="no_answer_after_reasoning")
            completion = answer
        found = extract_answer(completion, last_number=self.options.last_number, prompt=prompt, polarity=polarity)
        if found is None and unread and all(tree is None for tree, _, _ in golds):
            return Outcome.abstain(unread[0])
        if found is None:
            phrases = {tree[1] for tree, _, _ in golds if tree is not None and tree[0] == "text"} - {YES, NO}
            predicate = claim_predicate(completion) if phrases else None  # a reference in words: "Monotonically increasing"
            if predicate:
                return Outcome.ok(float(predicate in phrases), extracted=predicate, extraction="claim_words", rule="text")
            return Outcome.ok(0.0, rule="no_answer_found")
        found = self._one_value(found)
        info: dict[str, Any] = {"extracted": found.text, "extraction": found.rule}
        rejection = self._hack(found, prompt)
        if rejection:
            return Outcome.ok(0.0, **info, rule=rejection)
        pred_tree, pred_normal, pred_error = parse_answer(found.text)
        info["pred_normalized"] = pred_normal
        unparsable_golds = 0
        for gold_tree, gold_normal, _ in golds:
            info["gold_normalized"] = gold_normal
            if squash(gold_normal) == squash(pred_normal):
                info["rule"] = "string"
                return Outcome.ok(1.0, **info)
            if gold_tree is None:
                unparsable_golds += 1
                continue
            if pred_tree is None:
                continue
            if self.options.factor_form and asks_to_factor(prompt) and is_factored(gold_tree):
                equal, info["rule"] = same_factors(gold_tree, pred_tree), "factors"
                if equal:
                    return Outcome.ok(1.0, **info)
                continue
            equal, info["rule"] = equivalent(gold_tree, pred_tree, self.compare_options)
            if equal:
                return Outcome.ok(1.0, **info)
        if unparsable_golds == len(golds):
            return Outcome.abstain(unread[0] if unread else "reference cannot be parsed", **info)
        if pred_tree is None:
            info.update(rule="unparsable_answer", parse_error=pred_error)
        return Outcome.ok(0.0, **info)

    def _reference_texts(self, ref: str, unread: list[str]) -> list[str]:
        """A reference as answer texts: itself, or, when it is a short statement in prose
        ("0 is the only possible value", "C(10, 5), or equivalently 252"), the answers it states
        (`prose.read_reference`). One that cannot be read is noted in `unread`, and the reward
        abstains with that reason rather than score every answer 0."""
        stripped = ref.strip()
        if not self.options.prose_references or len(stripped) > 200 or re.search(r"\\boxed|\\fbox|####|<answer>", stripped, re.I):
            return [ref]
        words = prose_words(stripped)
        if (len(words) < 2 and not PROSE_CUES.intersection(w.lower() for w in words)) and not re.fullmatch(r"\W*(?:yes|no)\W*", stripped, re.I):
            return [ref]
        answers, why = read_reference(stripped)
        if why:
            unread.append(why)
        return answers

    def _one_value(self, found: Extraction) -> Extraction:
        """Boxes merged into one answer that all hold the same value (``15\\frac{39}{40}`` and
        ``\\frac{639}{40}``; ``x+11`` or ``11+x``) are that one value written twice, not a
        two-part answer: keep the last."""
        if found.group_size < 2:
            return found
        parts = found.boxes[-found.group_size :]
        trees = [parse_answer(part)[0] for part in parts]
        if any(tree is None for tree in trees):
            return found
        if all(equivalent(trees[-1], tree, self.compare_options)[0] for tree in trees[:-1]):
            return replace(found, text=parts[-1].strip(), rule=found.rule + "_same_value", group_size=1)
        return found

    def _hack(self, found: Extraction, prompt: Any) -> str | None:
        if not found.text.strip() or not normalize(found.text).strip():
            return "empty_answer"
        if found.boxes:
            group = {squash(box) for box in found.boxes[len(found.boxes) - found.group_size :]}
            others = {squash(box) for box in found.boxes[: len(found.boxes) - found.group_size]} - group - {""}
            if len(others) > self.options.max_other_boxes:
                return "many_boxed_answers"
        core = squash(found.text).strip(",.;:!?")
        relation = re.search(r"[<>≤≥≠]|\\(?:le|ge|lt|gt|leq|geq|neq)\b", found.text)  # one of the options a question lists
        if self.options.reject_prompt_copy and isinstance(prompt, str) and found.rule in IMPLICIT_RULES \
                and _OPERATION.search(found.text) and core in squash(prompt) and not relation:
            return "answer_copies_prompt"  # an unmarked expression lifted from the prompt ("What is 6 * 7?")
        arithmetic = bool(_UNEVALUATED.fullmatch(core)) and not _FRACTION.fullmatch(core)
        if self.options.reject_prompt_copy and arithmetic and isinstance(prompt, str) and core in squash(prompt):
            return "answer_copies_prompt"  # "The answer is 16+15" to "What is 16 + 15?", however marked
        if found.rule == "last_expression" and arithmetic:
            # "To find 16 + 15, simply add..." restates the sum it was asked for: the value of an
            # expression the completion never evaluated, in plain prose, is not its answer (one it
            # set as math, "Answer \( (9+1) \)", still counts, as in math-verify).
            return "unevaluated_expression"
        if self.options.reject_prompt_copy and isinstance(prompt, str) and len(found.text) >= 20:
            # Copying most of the prompt back is a hack; an answer that merely appears in the
            # prompt (one of the vectors it lists) is not.
            answer, question = squash(found.text), squash(prompt)
            if answer in question and len(answer) >= 0.5 * len(question):
                return "answer_copies_prompt"
        return None


def math_reward_factory(name: str = "math", **options: Any) -> Reward:
    """A math Reward with non-default options, e.g. ``math_reward_factory(percent_fraction=True)``."""
    verifier = MathVerifier(MathOptions(**options))

    def score(sample: Sample) -> Outcome:
        return verifier.verify(sample.completion, sample.reference, sample.prompt)

    # The verifier is bounded by construction; 5 s is the engine's hard backstop per sample.
    return Reward(score, name=name, doc=MATH_DOC, timeout_s=5.0, version="1:" + repr(sorted(asdict(verifier.options).items()))).with_recipe(
        math_reward_factory, name, **options)


MATH_DOC = """Math answer correctness, 1 or 0 (DeepSeek-R1 / TÜLU 3 RLVR style; peer: math-verify).

Extracts the final answer (boxed, answer tags, GSM8K ####, "the answer is", a closing claim in
prose, last math span, last number), parses answer and reference into a tree without eval, and
compares exactly for rationals, numerically at random points otherwise, structurally for sets,
tuples, intervals, matrices, relations and solution sets, by factors for factoring tasks.
References in prose ("0 is the only possible value") are read; abstains when the reference cannot
be read or parsed. See docs/rewards/math.md.
"""
