"""Environment steps overlapping generation (``play(overlap=True)``, ``[env] overlap``): two fixed
cohorts take turns, one's tools running while the other generates. The episodes are the ones the
lockstep player plays, a seeded real model samples the same ids however long the tools take, the
trained ids are the sampled ids, and the tools really do run during generation."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
import torch

from payoff.models.episodes import Limits, env_factory, play
from payoff.models.rollout import Rollouts, SamplingParams
from payoff.tasks.loader import task_rows
from tests.rl.episode_kit import RecordingGenerator, ScriptedGenerator, calculator_script, config
from tests.rl.test_episodes import ROWS, _segments
from tests.rl.toy import tiny_model, tokenizer

ROWS6 = task_rows("arithmetic", 6, 1, level=1)  # distinct prompts: a context names its episode


def _view(records: Sequence[Any]) -> list[tuple]:
    return [(r.messages, r.prompt_ids, r.ids, r.mask, r.sampled, r.turn_ends, r.ended, r.tool_calls, r.tool_errors) for r in records]


def _slow(make: Any, delays: Sequence[float], intervals: list[tuple[float, float]] | None = None) -> Any:
    """`make`'s environments, each step taking ``delays[seed % len(delays)]`` seconds longer; the
    (start, end) of each step go to `intervals`."""
    lock = threading.Lock()

    def build(seed: int) -> Any:
        env = make(seed)
        step = env.step

        def slow_step(message: dict[str, Any]) -> Any:
            began = time.perf_counter()
            time.sleep(delays[seed % len(delays)])
            out = step(message)
            if intervals is not None:
                with lock:
                    intervals.append((began, time.perf_counter()))
            return out

        env.step = slow_step
        return env

    return build


@pytest.mark.parametrize("script", [calculator_script, lambda context, turn: "I think it is 3"])
def test_overlap_plays_the_episodes_lockstep_plays(script: Any) -> None:
    tok = tokenizer()
    env = "calculator" if script is calculator_script else "feedback"
    make = env_factory(env, {} if env == "calculator" else {"tries": 3})
    runs = [play(ScriptedGenerator(tok, script), tok, ROWS6, make, SamplingParams(max_new_tokens=64), Limits(), overlap=overlap)
            for overlap in (False, True)]
    assert _view(runs[0][0]) == _view(runs[1][0])
    assert all(r.ended == "done" for r in runs[1][0]) if env == "calculator" else all(r.turns == 3 for r in runs[1][0])


def test_overlap_samples_the_same_ids_whatever_the_tools_take_and_trains_the_sampled_ids() -> None:
    """A real model samples feedback episodes twice under one seed, with the environments' steps
    taking different times in each run (so they finish in another order): the same episodes, id for
    id; and in each, the ids at mask 1 are exactly what the sampler returned, turn by turn."""
    tok, model = tokenizer(), tiny_model(3)
    make = env_factory("feedback", {"tries": 3})
    runs = []
    for delays in ([0.0, 0.05, 0.01], [0.04, 0.0, 0.0, 0.02]):
        generator = RecordingGenerator(model, tok, batch_size=8)
        torch.manual_seed(0)
        records, seconds = play(generator, tok, ROWS6, _slow(make, delays), SamplingParams(max_new_tokens=6), Limits(), overlap=True)
        runs.append(records)
        # two cohorts of three take turns: every generation call holds one cohort's live episodes
        assert [len(contexts) for contexts, _ in generator.returned] == [3, 3, 3, 3, 3, 3]
        for record in records:
            returned = [ids for contexts, batch in generator.returned for context, ids in zip(contexts, batch)
                        if context == (record.prompt_ids + record.ids)[:len(context)]]
            assert record.sampled == returned
            assert _segments(record.ids, record.mask, 1) == returned
            assert all("That is not correct" in tok.decode(w) for w in _segments(record.ids, record.mask, 0))
        assert seconds["env_hidden"] >= 0
    assert all(r.turns == 3 and r.env_tokens > 0 for r in runs[0])
    assert _view(runs[0]) == _view(runs[1])


class _SlowScript(ScriptedGenerator):
    """A scripted policy whose every generation call takes `seconds`; their (start, end) are kept."""

    def __init__(self, tokenizer: Any, script: Any, seconds: float) -> None:
        super().__init__(tokenizer, script)
        self.seconds, self.intervals = seconds, []

    def generate_ids(self, contexts: Sequence[list[int]], params: SamplingParams, greedy: bool = False) -> Rollouts:
        began = time.perf_counter()
        time.sleep(self.seconds)
        out = super().generate_ids(contexts, params, greedy)
        self.intervals.append((began, time.perf_counter()))
        return out


@pytest.mark.parametrize("overlap", [False, True])
def test_tools_run_while_the_other_cohort_generates(overlap: bool) -> None:
    tok = tokenizer()
    generator = _SlowScript(tok, calculator_script, 0.4)
    steps: list[tuple[float, float]] = []
    records, seconds = play(generator, tok, ROWS, _slow(env_factory("calculator", {}), [0.4], steps),
                            SamplingParams(max_new_tokens=64), Limits(), overlap=overlap)
    assert all(r.ended == "done" and r.tool_calls == 1 for r in records)
    overlapping = [(s, g) for s in steps for g in generator.intervals if s[0] < g[1] and g[0] < s[1]]
    if overlap:
        assert overlapping and seconds["env_hidden"] > 0.1
        assert seconds["env"] < 0.4 * 2  # the first cohort's tools waited on, at most; the second's hid behind generation
    else:
        assert not overlapping and seconds["env_hidden"] == 0.0 and seconds["env"] >= 0.4


def test_env_overlap_reaches_the_training_step(monkeypatch: pytest.MonkeyPatch) -> None:
    import payoff.rl.episode_batch as episode_batch
    from payoff.engine import Engine
    from payoff.registry import get_reward
    from payoff.rl.scoring import EngineScoring

    cfg = config({"name": "calculator", "overlap": True})
    assert cfg.env is not None and cfg.env.overlap and not config({"name": "calculator"}).env.overlap  # type: ignore[union-attr]
    tok = tokenizer()
    steps: list[tuple[float, float]] = []
    real = episode_batch.env_factory
    monkeypatch.setattr(episode_batch, "env_factory", lambda *args: _slow(real(*args), [0.3], steps))
    with Engine(get_reward("math"), workers=0) as engine:
        _, _, outcomes, seconds = episode_batch.play_and_score(_SlowScript(tok, calculator_script, 0.3), tok, EngineScoring(engine),
                                                                ROWS[:2], cfg, SamplingParams(max_new_tokens=64), 0, 0, 2)
    assert [o.score for o in outcomes] == [1.0] * 4 and seconds["env_hidden"] > 0
