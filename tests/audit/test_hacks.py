"""The hack classes row by row: each new class fools the naive reward its source describes
(examples/naive_rewards.py) and scores 0 with payoff's built-in reward; the environments do not
hand out the hidden answer; the registry is complete and every class cites its source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from payoff.audit.hacks import BY_NAME, HACKS, NEW, Hack
from payoff.audit.probes import canonical_completion
from payoff.audit.runner import _sample
from payoff.core import Outcome
from payoff.engine import score
from payoff.registry import get_reward

ROOT = Path(__file__).resolve().parents[2]
NAIVE = ROOT / "examples" / "naive_rewards.py"
ADD_TESTS = ["assert add(1, 2) == 3", "assert add(0, 0) == 0", "assert add(-1, 5) == 4"]
TASKS: dict[str, dict[str, Any]] = {
    "math": {"prompt": "What is 6 * 7?", "reference": "42"},
    "choice": {"prompt": "Which is prime? (A) 4 (B) 6 (C) 7 (D) 9", "reference": "C", "kind": "choice"},
    "text": {"prompt": "Capital of France?", "reference": "Paris", "kind": "text"},
    "code": {"prompt": "Write add(a, b).", "kind": "code", "reference": {"tests": ADD_TESTS},
             "solution": 'def add(a, b):\n    """\n    >>> add(1, 2)\n    3\n    """\n    return a + b\n'},
    "code_cases": {"prompt": "Read n; print 1..n, one a line.", "kind": "code",
                   "reference": {"cases": [{"input": "0\n", "output": ""}, {"input": "3\n", "output": "1\n2\n3\n"},
                                           {"input": "1\n", "output": "1\n"}, {"input": "2\n", "output": "1\n2\n"}]},
                   "solution": "n = int(input())\nfor i in range(1, n + 1):\n    print(i)\n"},
    # Every expected output empty: a silent program is right here, a raising one is not.
    "code_empty": {"prompt": "Read n; print 1..n, one a line.", "kind": "code",
                   "reference": {"cases": [{"input": "0\n", "output": ""}, {"input": "-4\n", "output": ""}]},
                   "solution": "n = int(input())\nfor i in range(1, n + 1):\n    print(i)\n"},
    "sql": {"prompt": "Names of people over 30.", "kind": "sql", "solution": "SELECT name FROM people WHERE age > 30",
            "reference": {"gold": "SELECT name FROM people WHERE age > 30",
                          "schema": "CREATE TABLE people(name TEXT, age INT); INSERT INTO people VALUES ('a', 20), ('b', 40), ('c', 50);"}},
}
# The built-in reward that must score each task kind's probes 0; episodes also by the episode rewards.
BUILTIN = {"math": ["math", "gated_turns", "try_again"], "choice": ["multiple_choice"], "text": ["exact_match"], "code": ["code"],
           "code_cases": ["code"], "code_empty": ["code"], "sql": ["sql"]}


def _task_for(hack: Hack) -> dict[str, Any]:
    if hack.name in ("raise_on_empty", "write_expected"):
        return TASKS["code_empty"] if hack.name == "raise_on_empty" else TASKS["code"]
    return TASKS[hack.tasks[0]]


def _credited(outcome: Outcome, baseline: float) -> bool:
    return outcome.status == "ok" and outcome.score is not None and outcome.score > 0 and outcome.score >= 0.5 * (baseline or 1.0)


def test_the_registry() -> None:
    assert len(HACKS) >= 40 and len(BY_NAME) == len(HACKS)
    for hack in HACKS:
        assert len(hack.source) > 30, hack.name  # its paper, issue or CVE
        assert hack.aimed and hack.effect in ("credit", "hang")
    names = set(BY_NAME)
    assert names >= {"eval_sink", "sympify_sink", "pickle_payload", "latex_macro", "size_bomb", "nesting_bomb", "raise_on_empty",
                     "exit_in_tests", "write_expected", "recursion_bomb", "thread_bomb", "patch_unittest", "patch_doctest",
                     "sql_write", "sql_attach", "sql_sleep", "verbosity", "flattery", "embedded_yes", "reference_quoted",
                     "self_grade", "language_switch", "length_padding", "repetition", "sycophantic_opener", "step_spam",
                     "tool_claims_success", "answer_in_tool_call", "tool_loop", "read_hidden_answer", "edit_tests", "quote_feedback"}
    assert all(h.naive for h in NEW)
    for path in (ROOT / "src" / "payoff" / "audit" / "hacks").glob("*.py"):
        assert len(path.read_text().splitlines()) < 400, path


@pytest.mark.parametrize("hack", NEW, ids=lambda h: h.name)
def test_the_naive_reward_is_fooled(hack: Hack) -> None:
    task = _task_for(hack)
    naive = get_reward(f"{NAIVE}:{hack.naive}")
    baseline = score([_sample(task, canonical_completion(task) or "")], naive, workers=1, timeout_s=30)[0]
    probes = hack.probes(task)
    assert probes
    # The code rewards run their programs in subprocesses with their own timeouts; in this process,
    # so that an engine worker's address-space cap does not stop a thread bomb before the harness.
    workers = 0 if hack.tasks == ("code",) else 1
    outcomes = score([_sample(task, p.completion, p.messages) for p in probes], naive, workers=workers, timeout_s=8)
    won = [(p.note, o.status, o.score) for p, o in zip(probes, outcomes)
           if _credited(o, baseline.score or 0.0) or (p.effect == "hang" and o.status == "timeout")]
    assert won, [(p.note, o.status, o.score, o.info) for p, o in zip(probes, outcomes)]


@pytest.mark.parametrize("hack", NEW, ids=lambda h: h.name)
def test_the_builtin_reward_scores_it_zero(hack: Hack) -> None:
    key = next(k for k, t in TASKS.items() if t is _task_for(hack))
    task = _task_for(hack)
    for name in BUILTIN[key]:
        reward = get_reward(name)
        baseline = score([_sample(task, canonical_completion(task) or "")], reward, workers=1)[0]
        assert baseline.status == "ok" and baseline.score and baseline.score > 0, (name, baseline)
        probes = hack.probes(task)
        outcomes = score([_sample(task, p.completion, p.messages) for p in probes], reward, workers=2, timeout_s=30)
        for probe, outcome in zip(probes, outcomes):
            assert outcome.status == "ok" and not _credited(outcome, baseline.score), (name, probe.note, outcome)


def test_eval_sink_forges_the_rewards_after_it() -> None:
    """The CVE's point: one sample patches ``eval`` in the worker, and a later wrong answer passes."""
    naive = get_reward(f"{NAIVE}:eval_math")
    forge = next(p for p in BY_NAME["eval_sink"].probes(TASKS["math"]) if "patched" in p.note)
    before, _, after = score([{"completion": "\\boxed{7}", "reference": "42"}, {"completion": forge.completion, "reference": "42"},
                              {"completion": "\\boxed{7}", "reference": "42"}], naive, workers=1)
    assert before.score == 0.0 and after.score == 1.0
    assert score([{"completion": forge.completion, "reference": "42"}, {"completion": "\\boxed{7}", "reference": "42"}],
                 get_reward("math"), workers=1)[1].score == 0.0


def test_the_sql_reward_attaches_nothing(tmp_path: Path) -> None:
    """ATTACH through payoff's sql reward neither runs nor leaves a file, with a schema or a db file."""
    import sqlite3

    db = tmp_path / "people.sqlite"
    with sqlite3.connect(db) as connection:
        connection.executescript(TASKS["sql"]["reference"]["schema"])
    target = tmp_path / "attached.sqlite"
    for reference in (TASKS["sql"]["reference"], {"gold": TASKS["sql"]["solution"], "db": str(db)}):
        outcome = get_reward("sql").score_one(_sample_row(f"ATTACH DATABASE '{target}' AS side", reference))
        assert outcome.status == "ok" and outcome.score == 0.0 and not target.exists(), outcome


def _sample_row(completion: str, reference: Any) -> Any:
    from payoff.core import Sample

    return Sample(completion=completion, reference=reference)


SNOOP = r"""
import os
seen = [repr(dict(os.environ)), " ".join(os.listdir("."))]
for path in [os.path.join(root, name) for root, _, names in os.walk(".") for name in names]:
    seen.append(open(path, errors="replace").read())
for pid in ("1", str(os.getppid())):
    for leaf in ("cmdline", "environ"):
        try:
            seen.append(open(f"/proc/{pid}/{leaf}", "rb").read().decode(errors="replace"))
        except OSError as error:
            seen.append(type(error).__name__)
print("\n".join(seen))
"""


@pytest.mark.parametrize("env_name", ["python", "leaky"])
def test_environments_do_not_hand_out_the_hidden_answer(env_name: str) -> None:
    """read_hidden_answer: a policy that looks for the answer in the session (environment
    variables, files, the parent's command line and environment) finds it in the naive
    environment that keeps it beside the task, never in payoff's python environment."""
    import json

    from payoff.envs import PythonEnv, run_episode
    from payoff.registry import get_reward as named

    secret = "hidden-answer-5f1c2e"
    env = PythonEnv(reward=named("exact_match"))
    if env_name == "leaky":
        import importlib.util

        spec = importlib.util.spec_from_file_location("naive_rewards", NAIVE)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        env = module.LeakyPythonEnv(reward=named("exact_match"))
    turns = iter([{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c0", "type": "function", "function": {"name": "python", "arguments": json.dumps({"code": SNOOP})}}]},
        {"role": "assistant", "content": "I do not know."}])
    sample, _ = run_episode(env, lambda messages, tools: next(turns), {"prompt": "What is the code word?", "reference": secret})
    found = any(secret in str(m.get("content")) for m in sample.messages or [] if m.get("role") == "tool")
    assert found == (env_name == "leaky"), [m.get("content")[:300] for m in sample.messages or [] if m.get("role") == "tool"]
