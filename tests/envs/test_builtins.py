"""Each built-in environment end to end on its real part, with a scripted policy."""

from __future__ import annotations

import json
import os
import signal
import sqlite3

import pytest

from payoff.envs import EpisodeLimits, get_env, multi_hop_corpus, run_episode
from payoff.envs.calculator import calculate
from payoff.envs.search import SearchIndex
from tests.envs.scripted import Scripted, call, say, tool_messages


@pytest.mark.parametrize(("expression", "value"), [
    ("6 * 7", "42"), ("(1 + 2) ** 3", "27"), ("7 / 2", "3.5"), ("7 // 2", "3"), ("-3 % 5", "2"), ("2 ** -1", "0.5"),
])
def test_calculator_values(expression, value) -> None:
    assert calculate(expression) == value


@pytest.mark.parametrize(("expression", "error"), [
    ("__import__('os').system('id')", "not allowed in arithmetic: Call"), ("1 / 0", "division by zero"),
    ("9 ** 9 ** 9", "exponent"), ("x + 1", "not allowed in arithmetic: Name"), ("1 +", "not an arithmetic expression"),
])
def test_calculator_refuses(expression, error) -> None:
    with pytest.raises(ValueError, match=error):
        calculate(expression)


def test_calculator_episode_with_a_bad_expression_goes_on() -> None:
    policy = Scripted(call("calculator", {"expression": "open('x')"}), call("calculator", {"expression": "6*7"}, "c2"), say("\\boxed{42}"))
    sample, outcome = run_episode(get_env("calculator"), policy, {"prompt": "6*7?", "reference": "42"})
    assert tool_messages(sample) == ["error: the tool calculator raised ValueError: not allowed in arithmetic: Call", "42"]
    assert outcome.score == 1.0


def test_calculator_runs_without_a_watching_thread_and_no_expression_runs_long() -> None:
    """The calculator is called directly (no thread per call): what a policy can write that would
    run long or deep is an error tool message, at once."""
    import threading
    import time

    pathological = ["1+" * 20000 + "1", "(" * 300 + "1" + ")" * 300, "2**1000*" * 50 + "1", "9" * 4000 + "**2", "-" * 50000 + "1"]
    threads = threading.active_count()
    began = time.perf_counter()
    policy = Scripted(*[call("calculator", {"expression": e}, f"c{i}") for i, e in enumerate(pathological)], say("\\boxed{1}"))
    sample, outcome = run_episode(get_env("calculator"), policy, {"prompt": "?", "reference": "1"})
    assert time.perf_counter() - began < 2.0 and threading.active_count() == threads
    assert outcome.status == "ok" and all(m.startswith("error: the tool calculator raised ") for m in tool_messages(sample))
    env = get_env("calculator")
    env.reset({"prompt": "?"})
    assert [t.enforces_limit for t in env.tools] == [True]


# -- python -----------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_python_session_keeps_state_survives_a_hang_and_a_crash_and_leaves_nothing_behind() -> None:
    env = get_env("python", call_timeout_s=1.0, require_isolation=True)
    seen = {}

    def grab_session(messages, tools):
        seen["session"] = env.session
        return policy(messages, tools)

    policy = Scripted(
        call("python", {"code": "import os\nx = 41\nprint(os.getuid() if os.getuid() else 'root!')"}, "a"),
        call("python", {"code": "print(x + 1)"}, "b"),
        call("python", {"code": "x = 100\nwhile True: pass"}, "c"),  # hangs: interrupted, state kept
        call("python", {"code": "print(x)"}, "d"),
        call("python", {"code": "raise RuntimeError('cell bug')"}, "e"),
        call("python", {"code": "print('z' * 100_000)"}, "f"),
        call("python", {"code": "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)"}, "g"),
        call("python", {"code": "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass"}, "h"),
        call("python", {"code": "print('x' in dir())"}, "i"),  # a fresh session: state lost
        call("python", {"code": "import os\nos._exit(3)"}, "j"),  # crashes the session
        call("python", {"code": "print(6 * 7)"}, "k"),
        call("python", {"code": "try:\n    input()\nexcept EOFError:\n    print('no stdin')"}, "l"),
        call("python", {"code": "import os\nos.write(1, b'garbage')\nprint('fine')"}, "m"),
        say("\\boxed{42}"),
    )
    sample, outcome = run_episode(env, grab_session, {"prompt": "6*7?", "reference": "42"})
    replies = tool_messages(sample)
    assert replies[0] == "65534\n" if os.getuid() == 0 else replies[0].strip().isdigit()
    assert replies[1] == "42\n"
    assert "ran past 1 s and was interrupted; the session's state is kept" in replies[2]
    assert replies[3] == "100\n"
    assert "RuntimeError: cell bug" in replies[4] and "Traceback" in replies[4]
    assert replies[5].endswith("[output truncated: 96101 more characters not shown]") and len(replies[5]) <= 4000
    assert "OSError" in replies[6] and "unreachable" in replies[6].lower() or "Network" in replies[6]
    assert "did not stop when interrupted: the session was killed and restarted, its state is lost" in replies[7]
    assert replies[8] == "False\n"
    assert "the Python session died" in replies[9]
    assert replies[10] == "42\n"
    assert replies[11] == "no stdin\n"  # a cell cannot read the channel
    assert replies[12] == "fine\n"  # nor write into it
    assert outcome.status == "ok" and outcome.score == 1.0
    session = seen["session"]
    assert session.network == "namespace" and len(session.pids) == 3  # the first, after the hang, after the crash
    assert env.session is None and not any(_alive(pid) for pid in session.pids)
    assert not os.path.exists(session.workdir)


def test_a_late_cell_is_interrupted_even_when_payoff_was_started_with_sigint_ignored() -> None:
    """A job a script puts in the background (`cmd &`) has SIGINT ignored, and its children inherit
    that: the session must still take the deadline's SIGINT as a KeyboardInterrupt."""
    from payoff.envs.python import PythonSession

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # what the session's parent hands on
    try:
        session = PythonSession()
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        assert session.run("x = 5").status == "ok"
        late = session.run("while True: pass", timeout_s=1.0)
        assert late.status == "timeout" and "interrupted; the session's state is kept" in late.output
        assert session.run("print(x)").output == "5\n" and len(session.pids) == 1  # the same session
    finally:
        session.close()


def test_python_session_is_killed_when_the_episode_fails() -> None:
    env = get_env("python")

    def policy(messages, tools):
        policy.session = env.session  # type: ignore[attr-defined]
        raise RuntimeError("policy crashed")

    _, outcome = run_episode(env, policy, {"prompt": "hi", "reference": "1"})
    assert outcome.status == "error"
    assert not any(_alive(pid) for pid in policy.session.pids)  # type: ignore[attr-defined]


def test_concurrent_python_episodes_keep_their_own_state() -> None:
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int):
        policy = Scripted(call("python", {"code": f"v = {i}"}), call("python", {"code": "print(v * 2)"}, "c2"), say(f"\\boxed{{{2 * i}}}"))
        sample, outcome = run_episode(get_env("python"), policy, {"prompt": "x", "reference": str(2 * i)})
        return outcome.score, tool_messages(sample)[1]

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(one, range(8))) == [(1.0, f"{2 * i}\n") for i in range(8)]


# -- sql --------------------------------------------------------------------------------------
@pytest.fixture
def shop(tmp_path):
    path = tmp_path / "shop.sqlite"
    connection = sqlite3.connect(path)
    connection.executescript("""
        CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL, stock INTEGER);
        INSERT INTO items VALUES (1, 'lamp', 12.5, 3), (2, 'boat', 900.0, 0), (3, 'clock', 40.0, 7);
        INSERT INTO items SELECT id + 3, 'bulk', 1.0, NULL
            FROM (WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n WHERE id < 200) SELECT id FROM n);
    """)
    connection.commit()
    connection.close()
    return str(path)


def test_sql_episode_read_only_typed_truncated_and_scored_by_the_sql_reward(shop) -> None:
    row = {"prompt": "Which items are in stock?", "reference": {"gold": "SELECT name FROM items WHERE stock > 0", "db": shop}}
    policy = Scripted(
        call("schema", {}, "a"),
        call("sql", {"query": "SELECT id, name, price, stock FROM items WHERE id <= 2"}, "b"),
        call("sql", {"query": "DELETE FROM items"}, "c"),
        call("sql", {"query": "SELECT * FROM items"}, "d"),
        call("sql", {"query": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"}, "e"),
        say("```sql\nSELECT name FROM items WHERE stock >= 1\n```"),
    )
    sample, outcome = run_episode(get_env("sql", call_timeout_s=0.5, max_rows=50), policy, row)
    schema, typed, write, many, runaway = tool_messages(sample)
    assert "CREATE TABLE items" in schema
    assert json.loads(typed) == {"columns": ["id", "name", "price", "stock"], "types": ["integer", "text", "real", "integer"],
                                 "rows": [[1, "lamp", 12.5, 3], [2, "boat", 900.0, 0]], "truncated": False}
    assert write.startswith("error") and "readonly" in write.replace("-", "").replace(" ", "").lower()
    assert json.loads(many)["truncated"] is True and len(json.loads(many)["rows"]) == 50
    assert "ran past 0.5 s and was interrupted" in runaway
    assert outcome.status == "ok" and outcome.score == 1.0
    assert sqlite3.connect(shop).execute("SELECT count(*) FROM items").fetchone()[0] == 203

    wrong = Scripted(say("```sql\nSELECT name FROM items\n```"))
    _, outcome = run_episode(get_env("sql"), wrong, row)
    assert outcome.status == "ok" and outcome.score == 0.0


def test_sql_environment_without_its_database_is_an_error(tmp_path) -> None:
    row = {"prompt": "?", "reference": {"gold": "SELECT 1", "db": str(tmp_path / "missing.sqlite")}}
    _, outcome = run_episode(get_env("sql"), Scripted(say("SELECT 1")), row)
    assert outcome.status == "error" and "environment reset failed: FileNotFoundError" in outcome.info["error"]
    assert not (tmp_path / "missing.sqlite").exists()


# -- search -----------------------------------------------------------------------------------
def test_the_multi_hop_corpus_is_seeded_and_needs_two_lookups() -> None:
    documents, rows = multi_hop_corpus(seed=3)
    assert multi_hop_corpus(seed=3) == (documents, rows) and multi_hop_corpus(seed=4)[0] != documents
    for row in rows:
        person_doc, org_doc = row["meta"]["hops"]
        assert row["reference"] in documents[org_doc][1] and row["reference"] not in documents[person_doc][1]
        assert documents[org_doc][0] in documents[person_doc][1]  # the person's page names the company


def test_search_ranks_by_bm25() -> None:
    others = {f"x{i}": (f"Other {i}", "clock and loom") for i in range(8)}
    index = SearchIndex({"a": ("Lamps", "lamp lamp lamp oil"), "b": ("Boats", "a boat with one lamp and a long tail of words"), **others})
    hits = index.search("lamp")
    assert [h["doc_id"] for h in hits] == ["a", "b"] and hits[0]["score"] > hits[1]["score"]
    assert index.search('"unbalanced NEAR ( *') == []  # the model's query is words, never FTS5 syntax
    with pytest.raises(KeyError):
        index.open("zzz")


def test_search_episode_answers_a_two_hop_question_with_the_tools() -> None:
    documents, rows = multi_hop_corpus(seed=0)
    row = rows[0]
    person = row["prompt"].split("company that ")[1].split(" works for")[0]
    company = documents[row["meta"]["hops"][1]][0]

    class TwoHops(Scripted):
        """Searches for the person, opens the hit, searches the company, opens it, answers."""

        def __call__(self, messages, tools):
            self.seen.append(messages)
            last = messages[-1]["content"]
            step = len(self.seen)
            if step == 1:
                return call("search", {"query": person}, "s1")
            if step == 2:
                return call("open", {"doc_id": json.loads(last)[0]["doc_id"]}, "o1")
            if step == 3:
                assert company in last
                return call("search", {"query": company}, "s2")
            if step == 4:
                return call("open", {"doc_id": json.loads(last)[0]["doc_id"]}, "o2")
            return say(last.split("headquarters are in ")[1].rstrip("."))

    sample, outcome = run_episode(get_env("search", seed=0), TwoHops(), row, EpisodeLimits(max_turns=6))
    assert outcome.status == "ok" and outcome.score == 1.0 and outcome.info["tool_calls"] == 4
    _, guessed = run_episode(get_env("search", seed=0), Scripted(say("Paris")), row)
    assert guessed.score == 0.0


# -- feedback ---------------------------------------------------------------------------------
def test_feedback_says_wrong_and_allows_k_tries() -> None:
    row = {"prompt": "What is 6 * 7?", "reference": "42"}
    policy = Scripted(say("\\boxed{41}"), say("\\boxed{42}"))
    sample, outcome = run_episode(get_env("feedback", tries=3), policy, row)
    assert outcome.score == 1.0 and outcome.info["turns"] == 2
    assert sample.messages[2] == {"role": "user", "content": "That is not correct. Please try again. (2 tries left)"}

    sample, outcome = run_episode(get_env("feedback", tries=2), Scripted(say("\\boxed{1}"), say("\\boxed{2}")), row)
    assert outcome.score == 0.0 and outcome.info["turns"] == 2 and outcome.info["ended"] == "done"


def test_feedback_with_a_reward_that_raises_is_an_error() -> None:
    from payoff.core import Sample, reward

    @reward(name="broken_judge")
    def broken_judge(sample: Sample) -> float:
        raise RuntimeError("judge offline")

    _, outcome = run_episode(get_env("feedback", reward=broken_judge), Scripted(say("42")), {"prompt": "?", "reference": "42"})
    assert outcome.status == "error" and outcome.info["error"] == "environment step failed: RuntimeError: judge offline"

    @reward(name="no_opinion")
    def no_opinion(sample: Sample):
        from payoff.core import Outcome

        return Outcome.abstain("reference unparseable")

    _, outcome = run_episode(get_env("feedback", reward=no_opinion), Scripted(say("42")), {"prompt": "?", "reference": "42"})
    assert outcome.status == "error" and "the task's reward gave abstain on attempt 1" in outcome.info["error"]


def test_registry() -> None:
    with pytest.raises(KeyError, match="registered: calculator, feedback, python, search, sql"):
        get_env("nope")
    assert get_env("calculator", reward="exact_match").reward.name == "exact_match"
