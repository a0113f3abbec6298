"""Episodes drawn for `payoff select` and `payoff rm sample` (payoff.models.draw): a scripted
policy (payoff's Generator protocol, the real SmolLM2 tokenizer and chat template) plays real
environments — the calculator, and SQL against a real SQLite file — and the rows they give go
through select's methods, `rm pairs` and the RM's rendering."""

from __future__ import annotations

import itertools
import re
import sqlite3
from pathlib import Path

import pytest

from payoff.models.draw import draw_episodes, score_episodes
from payoff.models.episodes import Limits, env_factory
from payoff.models.reward_model import RenderSpec, render
from payoff.models.rollout import SamplingParams
from payoff.registry import get_reward
from payoff.rm.pairs import build_pairs
from payoff.select.curves import scaling_curves
from payoff.select.run import episode_candidates, group_candidates, prepare
from payoff.tasks.loader import task_rows
from tests.rl.episode_kit import ScriptedGenerator, calculator_script
from tests.rl.toy import tokenizer

PARAMS = SamplingParams(max_new_tokens=64)


@pytest.fixture
def shop(tmp_path: Path) -> str:
    path = tmp_path / "shop.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, stock INTEGER)")
    connection.executemany("INSERT INTO items VALUES (?, ?, ?)", [(1, "pen", 3), (2, "ink", 0), (3, "cap", 5)])
    connection.commit()
    connection.close()
    return str(path)


def sql_script() -> object:
    """Turn 0 looks at the table; turn 1 answers, right and wrong in turn (episode by episode)."""
    answers = itertools.cycle(["SELECT name FROM items WHERE stock >= 1", "SELECT name FROM items"])

    def script(context: str, turn: int) -> str:
        if turn == 0:
            return '<tool_call>\n{"name": "sql", "arguments": {"query": "SELECT * FROM items"}}\n</tool_call>'
        return f"```sql\n{next(answers)}\n```"

    return script


def test_calculator_episodes_become_scored_rows_that_payoff_score_reads() -> None:
    tok = tokenizer()
    rows = task_rows("arithmetic", 2, 1, level=1)
    drawn = draw_episodes(ScriptedGenerator(tok, calculator_script), tok, rows, 3, env_factory("calculator", {}), PARAMS, Limits())
    scored = score_episodes(drawn, get_reward("math"), workers=0)
    assert [r["group"] for r in scored] == [0, 0, 0, 1, 1, 1] and [r["meta"]["sample"] for r in scored] == [0, 1, 2] * 2
    for row, task in zip(scored, [r for r in rows for _ in range(3)]):
        assert row["status"] == "ok" and row["reward"] == 1.0
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
        assert row["completion"] == f"The answer is {task['reference']}" and row["prompt"] == row["messages"][:2]
        assert row["meta"]["turns"] == 2 and row["meta"]["tool_calls"] == 1 and row["meta"]["tool_errors"] == 0
        assert row["meta"]["tools"][0]["function"]["name"] == "calculator" and row["meta"]["tokens"] > 0
        assert row["info"]["turns"] == 2 and row["info"]["ended"] == "done"
    # The rows are what `payoff score` reads: scoring them again gives the same outcome.
    from payoff.engine import Engine

    with Engine(get_reward("math"), workers=0) as engine:
        again = engine.score([{k: r[k] for k in ("prompt", "completion", "reference", "messages", "meta", "group")} for r in scored])
    assert [o.score for o in again] == [r["reward"] for r in scored]


def test_sql_episodes_on_a_real_database_pair_by_their_final_answers(shop: str) -> None:
    tok = tokenizer()
    row = {"prompt": "Which items are in stock?", "reference": {"gold": "SELECT name FROM items WHERE stock > 0", "db": shop}}
    broken = {"prompt": "Which items?", "reference": {"gold": "SELECT 1", "db": shop + ".missing"}}
    drawn = draw_episodes(ScriptedGenerator(tok, sql_script()), tok, [row, broken], 2, env_factory("sql", {}), PARAMS, Limits())
    scored = score_episodes(drawn, get_reward("sql"), workers=0)
    good, failed = scored[:2], scored[2:]
    assert [r["reward"] for r in good] == [1.0, 0.0]
    tool = [m for m in good[0]["messages"] if m["role"] == "tool"][0]
    assert '"rows": [[1, "pen", 3], [2, "ink", 0], [3, "cap", 5]]' in tool["content"]
    # A failed environment is an error that says why, never a wrong answer.
    assert all(r["status"] == "error" and "reset failed" in r["info"]["error"] for r in failed)
    assert sqlite3.connect(shop).execute("SELECT count(*) FROM items").fetchone()[0] == 3

    pairs, report = build_pairs(scored)
    assert report.pairs == 1 and report.left_out == {"error": 2}
    pair = pairs[0]
    assert pair["prompt"] == good[0]["messages"][:2]  # the opening messages: what the reward_model reward reads as the prompt
    assert pair["chosen"] == "```sql\nSELECT name FROM items WHERE stock >= 1\n```"
    assert pair["rejected"] == "```sql\nSELECT name FROM items\n```"
    ids, answer = render(tok, pair["prompt"], pair["chosen"], RenderSpec())
    text = tok.decode(ids + answer)
    assert "Which items are in stock?" in text and text.rstrip().endswith("stock >= 1\n```<|im_end|>")


def test_pairs_read_episodes_given_only_as_messages() -> None:
    def episode(answer: str, reward: float) -> dict:
        return {"group": 0, "reward": reward, "status": "ok",
                "messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": answer}]}

    malformed = {"group": 0, "reward": 1.0, "messages": [{"role": "tool", "tool_call_id": "x", "content": "4"}]}
    pairs, report = build_pairs([episode("4", 1.0), episode("5", 0.0), malformed])
    assert [(p["prompt"], p["chosen"], p["rejected"]) for p in pairs] == [([{"role": "user", "content": "2+2?"}], "4", "5")]
    assert report.left_out == {"malformed episode": 1}


def test_select_picks_among_episodes_and_counts_failed_ones(shop: str) -> None:
    tok = tokenizer()
    row = {"prompt": "Which items are in stock?", "reference": {"gold": "SELECT name FROM items WHERE stock > 0", "db": shop}}
    broken = {"prompt": "Which items?", "reference": {"gold": "SELECT 1", "db": shop + ".missing"}}
    prompts = episode_candidates([row, broken], 4, ScriptedGenerator(tok, sql_script()), tok, env_factory("sql", {}), Limits(),
                                 get_reward("sql"), workers=0)
    assert [c["score"] for c in prompts[0]["candidates"]] == [1.0, 0.0, 1.0, 0.0]
    assert all(c["failed"] == "error" and c["score"] is None for c in prompts[1]["candidates"])
    statuses = prepare(prompts, None, get_reward("sql"), 0)
    assert statuses == {"episode/error": 4, "gold/ok": 4}
    assert [c["correct"] for c in prompts[0]["candidates"]] == [True, False, True, False]
    assert not any(c["correct"] for c in prompts[1]["candidates"])
    curves = scaling_curves(prompts, ["bon", "majority", "pass@k"], [1, 4], 20, 0, "min", 0.5)["curves"]
    assert curves["bon"][4] == 0.5 and curves["pass@k"][4] == 0.5  # the first task always, the failed one never
    # A reward given to select scores each whole episode (here: its tool calls against the schema).
    rescored = group_candidates([{**c, "prompt": prompts[0]["prompt"], "reference": prompts[0]["reference"], "group": 0}
                                 for c in prompts[0]["candidates"]])
    for candidate in rescored[0]["candidates"]:
        candidate.pop("score")
    assert prepare(rescored, get_reward("tool_call_validity"), get_reward("sql"), 0)["reward/ok"] == 4
    assert all(c["score"] == 1.0 for c in rescored[0]["candidates"])


def test_limits_end_episodes_as_the_training_config_says() -> None:
    tok = tokenizer()
    rows = task_rows("arithmetic", 1, 1, level=1)

    def keeps_calling(context: str, turn: int) -> str:
        a, b = re.search(r"What is (\d+) \+ (\d+)", context).groups()  # type: ignore[union-attr]
        return f'<tool_call>\n{{"name": "calculator", "arguments": {{"expression": "{a} + {b}"}}}}\n</tool_call>'

    drawn = draw_episodes(ScriptedGenerator(tok, keeps_calling), tok, rows, 1, env_factory("calculator", {}), PARAMS,
                          Limits(max_turns=3, max_tool_calls=8))
    row, failed = drawn[0]
    assert failed is None and row["meta"]["ended"] == "max_turns" and row["meta"]["turns"] == 3


def test_a_reward_model_trains_on_episode_pairs_and_scores_episodes(shop: str, tmp_path: Path) -> None:
    """The chain `rm sample --env` -> `rm pairs` -> `rm train` -> the `reward_model` reward on an
    episode: the pairs are read as chat messages and an episode's Sample is scored as trained."""
    import json

    from payoff.core import Sample
    from payoff.rm.config import load_rm_config
    from payoff.rm.train import train_reward_model
    from tests.rl.toy import save_tiny

    tok = tokenizer()
    rows = [{"prompt": f"Which items are in stock? ({i})", "reference": {"gold": "SELECT name FROM items WHERE stock > 0", "db": shop}}
            for i in range(4)]
    drawn = draw_episodes(ScriptedGenerator(tok, sql_script()), tok, rows, 2, env_factory("sql", {}), PARAMS, Limits())
    scored = score_episodes(drawn, get_reward("sql"), workers=0)
    pairs, report = build_pairs(scored)
    assert report.pairs == 4 and all(isinstance(p["prompt"], list) for p in pairs)
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    run = tmp_path / "run"
    config = load_rm_config(None, [f"run_dir='{run}'", f"model.name='{save_tiny(tmp_path / 'tiny')}'", f"data.train='{path}'",
                                   f"data.eval='{path}'", "steps=2", "model.max_length=256", "optim.batch_size=4", "optim.micro_batch=4",
                                   "checkpoint_every=0", "log.progress=false", "log.tensorboard=false", "log.plot=false"])
    summary = train_reward_model(config)
    assert summary["steps"] == 2
    outcomes = get_reward("reward_model").configure(path=str(run)).score_batch([Sample.from_dict(r) for r in scored[:2]])
    assert [o.status for o in outcomes] == ["ok", "ok"] and outcomes[0].score != outcomes[1].score
