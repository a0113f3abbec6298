"""payoff's math verifier and Hugging Face math-verify side by side, in one process, on one core.

Three sets:
- the case table tests/data/math_cases.jsonl (math-verify's 269 cases run under their own settings,
  plus payoff's cases), accuracy per category against the table's labels;
- real model prose: the table's CHAMP rows (GPT-3.5 / GPT-4 / GPT-4 Turbo / PaLM 2 solutions and
  their one-sentence summaries, labelled right or wrong by reading; read in place from the
  champ-dataset wheel), false negatives and false positives per set (development, held-out) and
  form, and the speed on the full solutions (median of 3 runs); then the solutions CHAMP's own
  annotators marked with no wrong step (right answers by their labels), the share each credits;
- a generated set of pairs (integers, decimals, fractions, LaTeX expressions, sets; half right,
  half wrong, labels known by construction): accuracy per category and pairs/s.

    .venv/bin/python benchmarks/math_vs_math_verify.py [--pairs 20000] [--seed 0] [--markdown] [--prose-only]

The prose section runs with any payoff on the path (it reads the wheel itself), so the figures of
an older payoff come from the same script: PYTHONPATH=<old src> ... --prose-only.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import defaultdict
from collections.abc import Callable
from fractions import Fraction
from math import gcd
from pathlib import Path

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
from rich.console import Console
from rich.table import Table

from payoff.rewards.math import MathVerifier

TABLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "math_cases.jsonl"


# -- the two verifiers, as a user calls them ---------------------------------------------------
ABSTAIN = -2  # a verdict of its own: "the reference cannot be used", neither right nor wrong


def payoff_checker() -> Callable[[str, str, dict], int]:
    verifier = MathVerifier()

    def check(reference: str, completion: str, row: dict) -> int:
        outcome = verifier.verify(completion, reference, row.get("prompt", ""))
        return ABSTAIN if outcome.status == "abstain" else int(outcome.score == 1.0)

    return check


def math_verify_checker() -> Callable[[str, str, dict], int]:
    def check(reference: str, completion: str, row: dict) -> int:
        config = row.get("mv_config")
        if config:  # math-verify's own cases run under the settings of their test
            kinds = config["match_types"]
            extraction = []
            if "latex" in kinds:
                extraction.append(LatexExtractionConfig())
            if "expr" in kinds:
                extraction.append(ExprExtractionConfig())
            extraction = extraction or [LatexExtractionConfig(), ExprExtractionConfig()]
            gold, pred = parse(reference, extraction), parse(completion, extraction)
            return int(verify(gold, pred, float_rounding=config["precision"], strict=config["strict"],
                              allow_set_relation_comp=config["allow_set_relation_comp"]))
        gold_text = reference if "$" in reference or "\\boxed" in reference else f"${reference}$"
        return int(verify(parse(gold_text), parse(completion)))

    return check


# -- the generated set ----------------------------------------------------------------------------
def _boxed(answer: str, rng: random.Random) -> str:
    lead = rng.choice(["", "Let me compute step by step. 2 + 3 = 5 and so on.\n", "We simplify carefully.\n"])
    return lead + rng.choice([f"The answer is $\\boxed{{{answer}}}$.", f"Therefore $\\boxed{{{answer}}}$", f"$$\\boxed{{{answer}}}$$"])


def _frac(value: Fraction) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def generate(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    makers = [_integer, _decimal, _fraction, _expression, _set]
    for i in range(n):
        maker = makers[i % len(makers)]
        right = rng.random() < 0.5
        category, reference, answer = maker(rng, right)
        rows.append({"category": category, "reference": reference, "completion": _boxed(answer, rng), "expected": int(right)})
    return rows


def _integer(rng: random.Random, right: bool) -> tuple[str, str, str]:
    value = rng.randint(-10**6, 10**6)
    if right:
        answer = rng.choice([str(value), f"{value:,}", f"{value}.0"])
    else:
        answer = str(value + rng.choice([-1, 1]) * rng.randint(1, 100))
    return "integer", str(value), answer


def _decimal(rng: random.Random, right: bool) -> tuple[str, str, str]:
    places = rng.randint(1, 3)
    value = Fraction(rng.randint(-10**5, 10**5), 10**places)
    text = f"{float(value):.{places}f}"
    if right:
        answer = rng.choice([text + "0", _frac(value), text])
    else:
        answer = f"{float(value + Fraction(rng.choice([-1, 1]), 10**places)):.{places}f}"
    return "decimal", text, answer


def _fraction(rng: random.Random, right: bool) -> tuple[str, str, str]:
    while True:
        p, q = rng.randint(1, 500), rng.randint(2, 500)
        if gcd(p, q) == 1:
            break
    value = Fraction(p, q) * rng.choice([1, -1])
    if right:
        k = rng.randint(2, 9)
        answer = rng.choice([f"{'-' if value < 0 else ''}\\frac{{{p * k}}}{{{q * k}}}", f"{value.numerator}/{value.denominator}",
            f"\\dfrac{{{value.numerator}}}{{{q}}}"])
    else:
        answer = _frac(value + Fraction(1, q))
    return "fraction", _frac(value), answer


def _expression(rng: random.Random, right: bool) -> tuple[str, str, str]:
    a, b = rng.randint(2, 9), rng.choice([2, 3, 5, 6, 7, 10, 11])
    kind = rng.randrange(3)
    if kind == 0:  # a*sqrt(b)
        reference = f"{a}\\sqrt{{{b}}}"
        answer = f"\\sqrt{{{a * a * b}}}" if right else f"\\sqrt{{{a * a * b + 1}}}"
    elif kind == 1:  # a + b*pi
        reference = f"{a} + {b}\\pi"
        answer = f"{b}\\pi + {a}" if right else f"{b}\\pi + {a + 1}"
    else:  # (x + a)^2
        reference = f"(x + {a})^2"
        answer = f"x^2 + {2 * a}x + {a * a}" if right else f"x^2 + {2 * a}x + {a * a + 1}"
    return "latex_expression", reference, answer


def _set(rng: random.Random, right: bool) -> tuple[str, str, str]:
    items = rng.sample(range(-50, 50), rng.randint(2, 5))
    reference = "\\{" + ", ".join(map(str, items)) + "\\}"
    shuffled = items[:]
    rng.shuffle(shuffled)
    if not right:
        shuffled[0] = max(items) + 1
    return "set", reference, "\\{" + ", ".join(map(str, shuffled)) + "\\}"


# -- real model prose ------------------------------------------------------------------------------
DEVELOPMENT_CATEGORIES = {"Number-Theory", "Polynomial", "Sequence"}
HELD_OUT_CATEGORIES = {"Inequality", "Combinatorics"}  # "held-out" rows; the "fresh" samples' rows are of every category


def with_champ_text(rows: list[dict]) -> list[dict]:
    """The table's CHAMP rows with their text, read out of the cached wheel."""
    from payoff.prm.champ import champ_problems

    problems = champ_problems()
    for row in rows:
        if "champ" in row:
            problem_id, _, setting = row["champ"].partition("|")
            problem = problems[problem_id]
            split = row.get("split", "development").split()[0]
            assert split.startswith("fresh") or problem["category"] in (HELD_OUT_CATEGORIES if split == "held-out" else DEVELOPMENT_CATEGORIES)
            messages = problem["conversations"][setting]["messages"]
            row.update(completion=messages[-3 if row["form"] == "solution" else -1]["text"], reference=problem["_answer"],
                       prompt=problem["_text"])
    return rows


def annotated_rows() -> list[dict]:
    """CHAMP's own human labels: the solutions its annotators found no wrong step in (540
    first-wrong-step annotations, `payoff.prm.champ`), each with its conversation's one-sentence
    summary; a solution without a wrong step ends on the right answer, so every row is labelled 1."""
    from payoff.prm.champ import champ_problems

    problems = champ_problems()
    rows = []
    for problem in problems.values():
        split = "held-out" if problem["category"] in HELD_OUT_CATEGORIES else "development"
        for setting, annotation in sorted((problem.get("fws_annotations") or {}).items()):
            if annotation.get("start_idx") is not None:
                continue
            texts = [("solution", annotation["text"]), ("summary", problem["conversations"][setting]["messages"][-1]["text"])]
            rows += [{"split": split, "form": form, "completion": text, "reference": problem["_answer"], "prompt": problem["_text"]}
                     for form, text in texts if text]
    return rows


def annotated_report(markdown: bool) -> None:
    """The share of CHAMP's no-wrong-step solutions (and their summaries) each checker credits."""
    rows = annotated_rows()
    checkers = {"payoff": payoff_checker(), "math-verify": math_verify_checker()}
    lines = ["| set | form | right answers | payoff credits | math-verify credits |", "|---|---|---:|---:|---:|"]
    for split, form in [(split, form) for split in ("development", "held-out") for form in ("solution", "summary")]:
        items = [row for row in rows if row["split"] == split and row["form"] == form]
        cells = [split, form, str(len(items))]
        for check in checkers.values():
            credited = sum(check(row["reference"], row["completion"], row) == 1 for row in items)
            cells.append(f"{credited} ({credited / len(items):.1%})")
        lines.append("| " + " | ".join(cells) + " |")
    Console(width=160).print("CHAMP's solutions its annotators found no wrong step in (labels by CHAMP's annotators)\n" + "\n".join(lines))
    if markdown:
        print("\n".join(lines) + "\n")


def prose_report(rows: list[dict], markdown: bool) -> None:
    """False negatives (right answers scored 0 or abstained on) and false positives (wrong answers
    credited) against the labels, per set (development, held-out, fresh-1 to fresh-4) and form; then the time per full
    solution, median of 3 runs."""
    lines = ["| set | form | items | right | payoff FN | payoff FP | payoff abstains | math-verify FN | math-verify FP |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    checkers = {"payoff": payoff_checker(), "math-verify": math_verify_checker()}
    splits = list(dict.fromkeys(row.get("split", "development").split()[0] for row in rows))  # in the table's order
    for split, form in [(split, form) for split in splits for form in ("solution", "summary")]:
        items = [row for row in rows if row["form"] == form and row.get("split", "development").split()[0] == split]
        if not items:
            continue
        right = sum(row["label"] for row in items)
        cells = [split, form, str(len(items)), str(right)]
        for name, check in checkers.items():
            verdicts = [check(row["reference"], row["completion"], row) for row in items]
            false_negatives = sum(1 for row, got in zip(items, verdicts) if row["label"] == 1 and got != 1)
            false_positives = sum(1 for row, got in zip(items, verdicts) if row["label"] == 0 and got == 1)
            cells += [f"{false_negatives} ({false_negatives / right:.1%})", str(false_positives)]
            if name == "payoff":
                cells.append(str(sum(got == ABSTAIN for got in verdicts)))
        lines.append("| " + " | ".join(cells) + " |")
    solutions = [row for row in rows if row["form"] == "solution"]
    chars = sorted(len(row["completion"]) for row in solutions)
    times = {}
    for name, check in checkers.items():
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            for row in solutions:
                check(row["reference"], row["completion"], row)
            runs.append(time.perf_counter() - start)
        times[name] = sorted(runs)[1]
    speed = (f"{len(solutions)} full solutions (median {chars[len(chars) // 2]:,} characters, longest {chars[-1]:,}): payoff "
             f"{times['payoff'] / len(solutions) * 1000:.2f} ms each, math-verify {times['math-verify'] / len(solutions) * 1000:.2f} ms "
             f"each, ratio {times['math-verify'] / times['payoff']:.1f}× (median of 3 runs)")
    console = Console(width=160)
    console.print("Real model prose (CHAMP: development and held-out rows), against labels by reading")
    console.print("\n".join(lines))
    console.print(speed)
    if markdown:
        print("\n".join(lines) + f"\n\n{speed}\n")


# -- running --------------------------------------------------------------------------------------
def run(rows: list[dict], check: Callable[[str, str, dict], int]) -> tuple[dict[str, list[int]], float]:
    per_category: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    start = time.perf_counter()
    for row in rows:
        try:
            got = check(str(row["reference"]), row["completion"], row)
        except Exception:  # a verifier that raises has not verified
            got = -1
        expected = row["expected"] if row["expected"] in (0, 1) else ABSTAIN
        per_category[row["category"]][0] += int(got == expected)
        per_category[row["category"]][1] += 1
    return per_category, time.perf_counter() - start


def report(title: str, rows: list[dict], markdown: bool) -> None:
    ours, our_time = run(rows, payoff_checker())
    theirs, their_time = run(rows, math_verify_checker())
    table = Table(title=title)
    for column in ("category", "pairs", "payoff acc", "math-verify acc", "Δ (pp)"):
        table.add_column(column, justify="left" if column == "category" else "right")
    lines = ["| category | pairs | payoff | math-verify | Δ (pp) |", "|---|---:|---:|---:|---:|"]
    for category in sorted(ours):
        a, n = ours[category]
        b, _ = theirs[category]
        cells = [category, str(n), f"{a / n:.1%}", f"{b / n:.1%}", f"{(a - b) / n * 100:+.1f}"]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    total_ours = sum(a for a, _ in ours.values())
    total_theirs = sum(a for a, _ in theirs.values())
    total = len(rows)
    cells = ["all", str(total), f"{total_ours / total:.1%}", f"{total_theirs / total:.1%}", f"{(total_ours - total_theirs) / total * 100:+.1f}"]
    table.add_row(*cells, style="bold")
    lines.append("| " + " | ".join(f"**{c}**" for c in cells) + " |")
    speed = f"payoff {total / our_time:,.0f} pairs/s, math-verify {total / their_time:,.0f} pairs/s, ratio {their_time / our_time:.1f}×"
    console = Console(width=120)
    console.print(table)
    console.print(speed)
    if markdown:
        print("\n".join(lines) + f"\n\n{speed}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="payoff vs math-verify")
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--prose-only", action="store_true", help="only the real-prose section")
    args = parser.parse_args()
    table_rows = [json.loads(line) for line in TABLE.read_text().splitlines()]
    prose_rows = with_champ_text([row for row in table_rows if row.get("source") == "champ"])
    prose_report(prose_rows, args.markdown)
    annotated_report(args.markdown)
    if args.prose_only:
        return
    table_rows = [row for row in table_rows if row.get("source") != "champ"]
    report(f"Case table ({len(table_rows)} rows), accuracy against the table's labels", table_rows, args.markdown)
    report(f"Generated set ({args.pairs} pairs, seed {args.seed}), one core", generate(args.pairs, args.seed), args.markdown)


if __name__ == "__main__":
    main()
