"""A payoff environment under TRL 1.16's environment support, through TRL's own code: a real
``GRPOTrainer(environment_factory=..., reward_funcs=[...])`` with a tiny model runs one training
step. Only the sampling is scripted (``_generate_single_turn`` returns the token ids of a fixed
assistant text per turn, as a model would); TRL renders the tool schemas from the adapter's
methods, parses the tool calls with its own response parser, calls the tools, appends their
results, regenerates, and calls the reward with its ``environments``. Each rollout's outcome is
compared exactly with payoff's own `run_episode` playing the same turns."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from payoff.envs import get_env, run_episode
from payoff.integrations.common import resolve_reward
from payoff.integrations.trl_env import trl_environment, trl_messages
from tests.integrations.conformance import REWARDS, TABLE

pytestmark = pytest.mark.slow
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

# Each row: its question, the tool call the scripted model makes, then its final answer.
PLAYS = [
    # right: calls the calculator, answers with its result
    ({"prompt": "What is 6*7?", "answer": "42"}, {"expression": "6*7"}, "The answer is \\boxed{42}."),
    # wrong final answer after a right tool result
    ({"prompt": "What is 2+3?", "answer": "5"}, {"expression": "2+3"}, "\\boxed{6}"),
    # the tool's result holds the answer, the model's final turn does not: it earns nothing
    ({"prompt": "What is 9-2?", "answer": "7"}, {"expression": "9-2"}, "I do not know."),
    # arguments that do not match the tool's schema (payoff answers with an error message), and
    # a reference math cannot parse (abstain: None for TRL)
    ({"prompt": "What is 7*6?", "answer": "\\boxed{"}, {"expr": "7*6"}, "42"),
]


def _call_text(arguments: dict[str, Any]) -> str:
    return f'<tool_call>\n{json.dumps({"name": "calculator", "arguments": arguments})}\n</tool_call>'


def _play(question: str) -> tuple[dict[str, Any], str]:
    return next((args, final) for row, args, final in PLAYS if row["prompt"] in question)


def _tool_tokenizer() -> Any:
    """The tiny model's tokenizer (SmolLM2's, ChatML tokens) with TRL's shipped Qwen2.5 chat
    template, which renders tools and which TRL's response parser knows."""
    import trl

    from tests.rl.toy import tokenizer

    tok = copy.deepcopy(tokenizer())  # the cached one is shared: other tests need its own template
    tok.chat_template = (Path(trl.__file__).parent / "chat_templates" / "qwen2_5.jinja").read_text()
    return tok


def _run_trl(tmp_path: Path, reward: str) -> tuple[Any, Any, list[str]]:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from tests.rl.toy import tiny_model

    tok = _tool_tokenizer()
    env = trl_environment("calculator", reward=reward, workers=1)
    config = GRPOConfig(output_dir=str(tmp_path / "grpo"), use_cpu=True, bf16=False, max_steps=1, per_device_train_batch_size=8,
                        num_generations=2, max_completion_length=160, report_to="none", save_strategy="no", disable_tqdm=True,
                        seed=0, logging_steps=1)
    trainer = GRPOTrainer(model=tiny_model(), reward_funcs=[env.reward_func], args=config, processing_class=tok,
                          train_dataset=Dataset.from_list(env.rows([row for row, _, _ in PLAYS])), environment_factory=env.factory)
    rendered: list[str] = []

    def scripted(prompt_ids: list[list[int]], *_: Any, **__: Any) -> tuple[list[list[int]], None]:
        texts = []
        for ids in prompt_ids:
            prompt = tok.decode(ids)
            rendered.append(prompt)
            arguments, final = _play(prompt)
            texts.append((final if "<tool_response>" in prompt else _call_text(arguments)) + "<|im_end|>")
        return [tok(text, add_special_tokens=False)["input_ids"] for text in texts], None

    trainer._generate_single_turn = scripted  # the model's sampling; everything around it is TRL's
    trainer.train()
    return trainer, env, rendered


def _payoff_episode(row: dict[str, Any], reward: str) -> dict[str, Any]:
    """payoff's own run of the same turns: the reference every TRL rollout is held to."""
    arguments, final = _play(row["prompt"])

    def policy(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
        if messages[-1]["role"] == "tool":
            return {"role": "assistant", "content": final}
        call = {"id": "call_1", "type": "function", "function": {"name": "calculator", "arguments": json.dumps(arguments)}}
        return {"role": "assistant", "content": "", "tool_calls": [call]}

    _, outcome = run_episode(get_env("calculator", reward=resolve_reward(REWARDS[reward])), policy, row)
    return {"score": outcome.score, "status": outcome.status, "components": outcome.components}


@pytest.mark.parametrize("reward", list(REWARDS))
def test_payoff_environment_through_trl_environment_factory(tmp_path: Path, reward: str) -> None:
    trainer, env, rendered = _run_trl(tmp_path, REWARDS[reward])
    assert trainer.state.global_step == 1
    # TRL rendered the calculator's schema from the adapter's method into the prompt.
    assert '"name": "calculator"' in rendered[0] and '"expression"' in rendered[0]
    logs = trainer.state.log_history[0]
    assert logs["tools/call_frequency"] == 1.0 and logs["tools/failure_frequency"] == 0.0
    outcomes = env.reward_func.last_outcomes
    assert len(outcomes) == 2 * len(PLAYS)
    # TRL's batch, in its sampler's order (each prompt twice): the first generation call's prompts.
    order = [next(row for row, _, _ in PLAYS if row["prompt"] in prompt) for prompt in rendered[:len(outcomes)]]
    want = [_payoff_episode(row, reward) for row in order]
    got = [{"score": o.score, "status": o.status, "components": o.components} for o in outcomes]
    TABLE.record("TRL 1.16", f"calculator env, {reward}", "GRPOTrainer.train() with environment_factory: full outcomes", got, want,
                 note="tool loop and reward_funcs by TRL, sampling scripted")
    by_prompt = {row["prompt"]: o["score"] if o["status"] == "ok" else o["status"] for row, o in zip(order, want)}
    assert by_prompt == {"What is 6*7?": 1.0, "What is 2+3?": 0.0, "What is 9-2?": 0.0, "What is 7*6?": "abstain"}
    # TRL's reward column for it: the mean over the scored rollouts (abstain: None, left out).
    column = f"rewards/{env.reward_func.__name__}/mean"
    assert logs[column] == pytest.approx(2 / 6)


def test_what_trl_hands_the_reward_is_graded_on_the_assistant_turns_only() -> None:
    """TRL's completion (tool calls without ids, parsed arguments, tool messages without
    tool_call_id) becomes a valid payoff episode; its graded text is the final assistant turn."""
    from payoff.envs.runner import episode_sample

    completion = [{"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "calculator",
                                                                                                        "arguments": {"expression": "2+2"}}}]},
                  {"role": "tool", "name": "calculator", "content": "4"},
                  {"role": "assistant", "content": "I do not know."}]
    messages = trl_messages([{"role": "user", "content": "What is 2+2?"}], completion)
    sample = episode_sample(messages, {"answer": "4"})
    assert sample.completion == "I do not know." and sample.reference == "4"
    assert messages[1]["tool_calls"][0]["function"]["arguments"] == '{"expression": "2+2"}'
    assert messages[2]["tool_call_id"] == messages[1]["tool_calls"][0]["id"]


def _trl_tools(instance: Any) -> dict[str, Any]:
    """The tools TRL takes from an environment instance, as it lists them (GRPOTrainer.__init__)."""
    import inspect

    return {name: getattr(instance, name) for name, _ in inspect.getmembers(type(instance), predicate=inspect.isfunction)
            if name not in ("reset", "get_reward") and not name.startswith("_")}


@pytest.fixture
def shop(tmp_path: Path) -> str:
    import sqlite3

    path = tmp_path / "shop.sqlite"
    with sqlite3.connect(path) as connection:
        connection.executescript("CREATE TABLE items (name TEXT, stock INTEGER); INSERT INTO items VALUES ('lamp', 3), ('boat', 0);")
    return str(path)


@pytest.mark.parametrize("name", ["calculator", "python", "search", "sql"])
def test_builtin_tools_as_transformers_renders_them_for_trl(name: str, shop: str) -> None:
    from transformers.utils import get_json_schema

    row = {"prompt": "q", "reference": {"gold": "SELECT name FROM items", "db": shop}} if name == "sql" else None
    env = trl_environment(name, row=row, workers=1)
    tools = _trl_tools(env.factory())
    assert sorted(tools) == sorted(t["function"]["name"] for t in env.tools)
    for schema in env.tools:
        function = schema["function"]
        rendered = get_json_schema(tools[function["name"]])["function"]
        assert rendered["name"] == function["name"] and rendered["description"] == function["description"]
        parameters = function["parameters"]
        assert rendered["parameters"].get("required", []) == parameters.get("required", [])
        assert {k: v["type"] for k, v in rendered["parameters"]["properties"].items()} == \
            {k: v["type"] for k, v in parameters.get("properties", {}).items()}


def test_python_episode_through_the_adapter_closes_its_session_once_scored() -> None:
    env = trl_environment("python", workers=1)
    instance = env.factory()
    row = env.rows([{"prompt": "What is 2*21?", "answer": "42"}])[0]
    assert instance.reset(**row) is None  # TRL appends nothing: the prompt is the opening already
    tools = _trl_tools(instance)
    assert tools["python"](code="x = 21") == "(no output)"
    assert tools["python"](code="print(x * 2)") == "42\n"  # state kept across calls: one session per episode
    session = instance._env.session
    def run(code: str) -> dict[str, Any]:
        return {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "python", "arguments": {"code": code}}}]}

    completion = [
        run("x = 21"), {"role": "tool", "name": "python", "content": "(no output)"},
        run("print(x * 2)"), {"role": "tool", "name": "python", "content": "42\n"},
        {"role": "assistant", "content": "The answer is \\boxed{42}."}]
    assert env.reward_func(prompts=[row["prompt"]], completions=[completion], environments=[instance], answer=["42"]) == [1.0]
    assert instance._env.session is None and not any(Path(f"/proc/{pid}").exists() for pid in session.pids)
    # A completion that is no valid episode is an error outcome that says why, never a 0.
    broken = [{"role": "tool", "name": "python", "content": "42"}, {"role": "assistant", "content": "\\boxed{42}"}]
    assert env.reward_func(prompts=[row["prompt"]], completions=[broken], answer=["42"]) == [None]
    assert "not a valid episode" in env.reward_func.last_outcomes[0].info["error"]


def test_an_environment_trl_cannot_drive_is_refused() -> None:
    with pytest.raises(ValueError, match="never shows it that message"):
        trl_environment("feedback")


def test_python_sessions_under_trls_pooling_are_closed_after_each_step(tmp_path: Path) -> None:
    """Two GRPO steps with the python environment: TRL pools and resets the instances; every
    rollout's session (its pid printed by the tool) is gone once the step is scored."""
    import re

    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from tests.rl.toy import tiny_model

    tok = _tool_tokenizer()
    env = trl_environment("python", workers=1)
    rows = env.rows([{"prompt": "What is 6*7?", "answer": "42"}, {"prompt": "What is 7*6?", "answer": "42"}])
    config = GRPOConfig(output_dir=str(tmp_path / "grpo"), use_cpu=True, bf16=False, max_steps=2, per_device_train_batch_size=4,
                        num_generations=2, max_completion_length=160, report_to="none", save_strategy="no", disable_tqdm=True, seed=0)
    trainer = GRPOTrainer(model=tiny_model(), reward_funcs=[env.reward_func], args=config, processing_class=tok,
                          train_dataset=Dataset.from_list(rows), environment_factory=env.factory)
    pids: list[int] = []

    def scripted(prompt_ids: list[list[int]], *_: Any, **__: Any) -> tuple[list[list[int]], None]:
        texts = []
        for ids in prompt_ids:
            prompt = tok.decode(ids)
            printed = re.findall(r"<tool_response>\n(\d+)\n", prompt)
            if printed:
                pids.append(int(printed[-1]))
                texts.append("The answer is \\boxed{42}.<|im_end|>")
            else:
                code = json.dumps({"name": "python", "arguments": {"code": "import os; print(os.getpid())"}})
                texts.append(f"<tool_call>\n{code}\n</tool_call><|im_end|>")
        return [tok(text, add_special_tokens=False)["input_ids"] for text in texts], None

    trainer._generate_single_turn = scripted
    trainer.train()
    assert trainer.state.global_step == 2 and len(pids) == 8 and len(set(pids)) == 8  # a fresh session per rollout
    assert [o.score for o in env.reward_func.last_outcomes] == [1.0] * 4
    pool = trainer._environment_pool[None]
    assert len(pool) == 4 and not any(instance._open for instance in pool)  # reused across the two steps, closed
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
