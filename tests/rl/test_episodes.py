"""Episode rollouts: the context is the sampled ids plus the environment's ids, never text tokenized
again; environment tokens never carry loss; limits and failures end episodes as they say."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from payoff.models.episodes import Limits, env_factory, play, to_rollouts, to_sample
from payoff.models.rollout import SamplingParams
from payoff.models.tool_text import render_opening
from payoff.rl.batch import Estimate
from payoff.rl.update import policy_update
from payoff.tasks.loader import task_rows
from tests.rl.episode_kit import RecordingGenerator, ScriptedGenerator, calculator_script, config
from tests.rl.toy import tiny_model, tokenizer

ROWS = task_rows("arithmetic", 4, 1, level=1)


def _segments(ids: list[int], mask: list[int], keep: int) -> list[list[int]]:
    """The runs of ``ids`` where ``mask`` equals ``keep``."""
    runs: list[list[int]] = []
    for token, flag in zip(ids, mask):
        if flag != keep:
            if runs and runs[-1]:
                runs.append([])
            continue
        if not runs:
            runs.append([])
        runs[-1].append(token)
    return [r for r in runs if r]


def test_calculator_episodes_use_the_tool_and_their_context_is_the_whole_conversation() -> None:
    tok = tokenizer()
    generator = ScriptedGenerator(tok, calculator_script)
    records, seconds = play(generator, tok, ROWS, env_factory("calculator", {}), SamplingParams(max_new_tokens=64), Limits())
    for record, row in zip(records, ROWS):
        assert record.ended == "done" and record.turns == 2 and record.tool_calls == 1 and record.tool_errors == 0
        tool = [m for m in record.messages if m["role"] == "tool"]
        assert tool[0]["content"] == row["reference"]
        assert record.messages[-1] == {"role": "assistant", "content": f"The answer is {row['reference']}"}
        # Appending ids turn by turn gives exactly the chat template's rendering of the whole
        # conversation (the sampled texts as the assistant turns).
        opening = [m for m in record.messages if m["role"] in ("system", "user")]
        said = [tok.decode(ids, skip_special_tokens=True) for ids in record.sampled]
        whole = render_opening(tok, opening, record.tools)[:-len("<|im_start|>assistant\n")]
        whole += f"<|im_start|>assistant\n{said[0]}<|im_end|>\n<|im_start|>tool\n{tool[0]['content']}<|im_end|>\n"
        whole += f"<|im_start|>assistant\n{said[1]}<|im_end|>"
        assert tok.decode(record.prompt_ids + record.ids) == whole
        sample, failed = to_sample(record, 0, 0)
        assert failed is None and sample.completion == f"The answer is {row['reference']}" and sample.meta["tools"]
    assert seconds["generate"] >= 0 and seconds["env"] > 0


def _policy_gradient_positions(model: Any, policy: Any, rollouts: Any, advantages: torch.Tensor) -> list[torch.Tensor]:
    """Run the real update once and return, per sample, the gradient norm reaching the logits
    that predict each completion token."""
    from payoff.rl.config import TrainConfig

    captured: list[torch.Tensor] = []

    def keep(_module: Any, _inputs: Any, output: Any) -> None:
        if output.logits.requires_grad:
            output.logits.retain_grad()
            captured.append(output.logits)

    handle = model.register_forward_hook(keep)
    try:
        optimizer = torch.optim.SGD(policy.trainable(), lr=0.0)
        cfg = TrainConfig.model_validate({"optim": {"micro_batch": 64}, "rollout": {"max_new_tokens": 10}})
        stats = policy_update(policy, optimizer, rollouts, Estimate(advantages, torch.ones(len(advantages), dtype=torch.bool)), cfg)
    finally:
        handle.remove()
    assert stats["trained_samples"] == len(advantages) and len(captured) == 1
    logits = captured[0]
    width = max(len(c) for c in rollouts.completion_ids)
    grads = logits.grad[:, -width - 1:-1, :].norm(dim=-1)  # row j predicts completion token j
    return [grads[i, :len(c)] for i, c in enumerate(rollouts.completion_ids)]


def test_trained_ids_equal_sampled_ids_and_environment_tokens_carry_no_loss() -> None:
    """The masking test: a real model samples feedback episodes (wrong answers, so the user writes
    between turns); the ids trained on at mask 1 are, turn by turn, exactly the ids the sampler
    returned, and the real update's gradient never reaches a logit that predicts an environment
    token, while it reaches every sampled one."""
    from payoff.models.policy import Policy

    tok, model = tokenizer(), tiny_model(3)
    generator = RecordingGenerator(model, tok, batch_size=8)
    torch.manual_seed(0)
    records, _ = play(generator, tok, ROWS[:3], env_factory("feedback", {"tries": 3}), SamplingParams(max_new_tokens=6), Limits())
    assert all(r.turns == 3 and r.env_tokens > 0 for r in records)
    for record in records:
        # what the sampler returned for this episode, turn by turn (contexts identify the episode)
        returned = [ids for contexts, batch in generator.returned for context, ids in zip(contexts, batch)
                    if context == (record.prompt_ids + record.ids)[:len(context)]]
        assert record.sampled == returned
        assert _segments(record.ids, record.mask, 1) == returned
        written = _segments(record.ids, record.mask, 0)
        assert len(written) == 2 and all("That is not correct" in tok.decode(w) for w in written)
        assert "That is not correct" not in tok.decode([t for t, m in zip(record.ids, record.mask) if m])
    rollouts = to_rollouts(records)
    policy = Policy(model, tok, lora=False, keep_reference=False)
    grads = _policy_gradient_positions(model, policy, rollouts, torch.tensor([1.0, -1.0, 0.5]))
    for record, grad in zip(records, grads):
        mask = torch.tensor(record.mask, dtype=torch.bool)
        assert bool((grad[~mask] == 0).all()), "an environment token carried loss"
        assert bool((grad[mask] > 0).all()), "a sampled token carried no loss"


def _script(text: str) -> Any:
    return lambda context, turn: text


@pytest.mark.parametrize(("limits", "script", "ended", "turns"), [
    (Limits(max_turns=2), _script("I do not know"), "max_turns", 2),
    (Limits(max_tool_calls=2), _script('<tool_call>{"name": "calculator", "arguments": {"expression": "1+1"}}</tool_call>' * 2),
     "max_tool_calls", 2),
    (Limits(max_tokens=70), _script("no " * 30), "max_tokens", 1),
    (Limits(wall_s=1e-6), _script("I do not know"), "wall_s", 1),
])
def test_limits_end_episodes(limits: Limits, script: Any, ended: str, turns: int) -> None:
    tok = tokenizer()
    env = "calculator" if ended == "max_tool_calls" else "feedback"
    records, _ = play(ScriptedGenerator(tok, script), tok, ROWS[:1], env_factory(env, {"tries": 5} if env == "feedback" else {}),
                      SamplingParams(max_new_tokens=64), limits)
    record = records[0]
    assert (record.ended, record.turns) == (ended, turns)
    assert len(record.prompt_ids) + len(record.ids) <= limits.max_tokens


def test_a_tool_error_is_counted_and_the_episode_goes_on() -> None:
    tok = tokenizer()
    steps = ['<tool_call>{"name": "calculator", "arguments": {"expression": "9**9**9"}}</tool_call>',
             '<tool_call>{"name": "nothing", "arguments": {}}</tool_call>', "The answer is 3"]
    records, _ = play(ScriptedGenerator(tok, lambda context, turn: steps[turn]), tok, ROWS[:1], env_factory("calculator", {}),
                      SamplingParams(max_new_tokens=64), Limits())
    assert (records[0].ended, records[0].turns, records[0].tool_calls, records[0].tool_errors) == ("done", 3, 2, 2)


def test_an_environment_that_fails_gives_an_error_outcome() -> None:
    tok = tokenizer()
    # feedback without the task's reward fails at reset; a reward that cannot judge fails at step
    records, _ = play(ScriptedGenerator(tok, _script("7")), tok, ROWS[:1], lambda seed: _broken(), SamplingParams(), Limits())
    sample, outcome = to_sample(records[0], 0, 0)
    assert outcome is not None and outcome.status == "error" and "reset failed" in outcome.info["error"]


def _broken() -> Any:
    from payoff.envs import FeedbackEnv

    return FeedbackEnv(reward=None)


def test_env_table_is_validated() -> None:
    with pytest.raises(ValueError, match="no environment named"):
        config({"name": "nowhere"})
    assert config({"name": "feedback", "options": {"tries": 3}}).env.max_turns == 4
