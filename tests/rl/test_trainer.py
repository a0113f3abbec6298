"""The trainer end to end on a tiny random Llama (real tokenizer, real engine workers)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from payoff.models.logprobs import pack, token_logprobs
from payoff.models.policy import load_training_policy
from payoff.models.rollout import Rollouts
from payoff.rl import algorithms as alg
from payoff.rl.batch import Estimate, RewardFailure
from payoff.rl.config import TrainConfig
from payoff.rl.loop import train
from payoff.rl.update import policy_update
from tests.rl.toy import flaky, tiny_model, tokenizer, vowel_share

ROWS = [{"prompt": f"Write a word number {i}.", "reference": None} for i in range(64)]
DETERMINISTIC = ("reward_mean", "accuracy", "completion_length", "loss", "grad_norm", "entropy", "trained_samples")


def toy_config(run_dir: Path, **changes) -> TrainConfig:
    data = {"seed": 0, "steps": 20, "run_dir": str(run_dir), "checkpoint_every": 0,
            "model": {"chat_template": False},
            "rollout": {"group_size": 4, "prompts_per_step": 4, "max_new_tokens": 8, "batch_size": 16},
            "optim": {"lr": 5e-2}, "engine": {"workers": 0}, "eval": {"threshold": 0.3},
            "log": {"progress": False, "tensorboard": False, "plot": False, "samples_every": 0}}
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            data.setdefault(section, {})[name] = value
        else:
            data[section] = value
    return TrainConfig.model_validate(data)


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> tuple[dict, list[dict]]:
    run_dir = tmp_path_factory.mktemp("toy") / "run"
    summary = train(toy_config(run_dir, eval={"threshold": 0.3, "pass_k": 2}), model=tiny_model(), tokenizer=tokenizer(), reward=vowel_share,
        train_rows=ROWS, eval_rows=ROWS[:8])
    written = json.loads((run_dir / "summary.json").read_text())
    assert {k: v for k, v in written.items() if k != "heldout_examples_after"} == {k: v for k, v in summary.items() if k != "heldout_examples_after"}
    return summary, metrics(run_dir)


def test_twenty_steps_on_a_learnable_toy_reward_raise_the_reward(toy_run) -> None:
    summary, rows = toy_run
    assert summary["steps"] == 20 and len(rows) == 20
    for key in ("accuracy_before", "accuracy_after", "wall_seconds", "seed", "pass@2_before", "pass@2_after"):
        assert summary[key] is not None, key
    assert all(0 <= summary[k] <= 1 for k in ("accuracy_before", "accuracy_after", "pass@2_before", "pass@2_after"))
    first = sum(r["reward_mean"] for r in rows[:3]) / 3
    last = sum(r["reward_mean"] for r in rows[-3:]) / 3
    assert last > first + 0.1, (first, last)
    for key in ("reward_mean", "accuracy", "kl", "clip_fraction", "entropy", "completion_length", "tokens_per_s",
                "time_generate", "time_score_wait", "time_train", "status/ok", "status/error", "masked"):
        assert key in rows[0], key


def test_the_same_seed_gives_the_same_run(toy_run, tmp_path: Path) -> None:
    _, rows = toy_run
    train(toy_config(tmp_path / "again", steps=6), model=tiny_model(), tokenizer=tokenizer(), reward=vowel_share,
          train_rows=ROWS, eval_rows=[])
    again = metrics(tmp_path / "again")
    for a, b in zip(rows[:6], again):
        for key in DETERMINISTIC:
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), key


def test_loss_falls_on_a_fixed_batch() -> None:
    policy = load_training_policy(toy_config(Path("unused")).model, keep_reference=False, model=tiny_model(1), tokenizer=tokenizer())
    tok = tokenizer()
    prompts = [tok("Count to three:")["input_ids"]] * 4
    completions = [tok(" one two three")["input_ids"], tok(" blue")["input_ids"], tok(" 1 2 3")["input_ids"], tok(" no")["input_ids"]]
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0])
    optimizer = torch.optim.AdamW(policy.trainable(), lr=1e-2)
    config = toy_config(Path("unused"), optim={"lr": 5e-2, "micro_batch": 2})

    def objective() -> float:
        batch = pack(prompts, completions, policy.pad_id)
        with torch.no_grad():
            logp, _ = token_logprobs(policy.model, batch)
        per_seq = logp.sum(1) / batch.completion_mask.sum(1)
        return float(-(per_seq * adv).mean())

    start = objective()
    for _ in range(10):
        policy_update(policy, optimizer, Rollouts(prompts, completions), Estimate(adv, torch.ones(4, dtype=torch.bool)), config)
    assert objective() < start - 0.5


def test_reward_errors_are_masked_and_counted_with_real_workers(tmp_path: Path) -> None:
    rows_seen = []
    summary = train(toy_config(tmp_path / "flaky", steps=3, engine={"workers": 2}), model=tiny_model(), tokenizer=tokenizer(),
                    reward=flaky, train_rows=ROWS, eval_rows=[], on_step=rows_seen.append)
    assert summary["steps"] == 3
    errors = sum(r["status/error"] for r in rows_seen)
    assert errors > 0
    for row in rows_seen:
        assert row["masked"] == row["status/error"]  # every error masked, nothing else
        assert row["status/ok"] + row["status/error"] == 16


def test_on_error_fail_stops_the_run(tmp_path: Path) -> None:
    with pytest.raises(RewardFailure, match="toy reward failure"):
        train(toy_config(tmp_path / "fail", steps=3, algorithm={"on_error": "fail"}), model=tiny_model(), tokenizer=tokenizer(),
              reward=flaky, train_rows=ROWS, eval_rows=[])


def _group_check(name: str):
    """Per estimator, its formula recomputed by hand from the step's rewards (a loop, not the
    vectorised implementation) and the largest |A| its formula allows on a [0, 1] reward with
    G = 4 (the toy reward, vowel share, is in [0, 1])."""

    def loo(rewards, valid, i, j):
        others = [float(rewards[i, k]) for k in range(rewards.shape[1]) if k != j and valid[i, k]]
        return float(rewards[i, j]) - sum(others) / len(others)

    def centred(rewards, valid, i, j):
        members = [float(rewards[i, k]) for k in range(rewards.shape[1]) if valid[i, k]]
        return float(rewards[i, j]) - sum(members) / len(members)

    return {
        "rloo": (loo, 4 / 3),
        "dr_grpo": (centred, 1.0),
        "remax": (None, 1.0),
        "bnpo": (None, 10.0),
        "reinforce_pp": (None, math.sqrt(15)),  # batch z-score over 16 samples
        "grpo": (None, math.sqrt(3)),
    }[name]


ALGORITHMS = [
    {"advantage": "rloo"}, {"advantage": "dr_grpo", "loss_aggregation": "seq_sum"},
    {"advantage": "reinforce_pp", "kl_coef": 0.1, "kl_in_reward": True}, {"advantage": "remax"}, {"advantage": "bnpo"},
    {"selection": "raft", "raft_threshold": 0.3}, {"selection": "reinforce_rej"}, {"dynamic_sampling": True, "eps_high": 0.28, "epochs": 2},
    {"kl_coef": 0.05, "kl_estimator": "k3", "positive_weight": 0.1},
]


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=lambda a: "-".join(f"{k}={v}" for k, v in a.items()))
def test_every_algorithm_trains_with_bounded_advantages_that_match_its_formula(tmp_path: Path, algorithm: dict) -> None:
    seen, results = [], []
    train(toy_config(tmp_path / "alg", steps=2, algorithm=algorithm), model=tiny_model(), tokenizer=tokenizer(), reward=vowel_share,
          train_rows=ROWS, eval_rows=[], on_step=seen.append, on_result=results.append)
    assert len(seen) == 2
    assert all(math.isfinite(r["loss"]) and r["trained_samples"] > 0 for r in seen)
    estimator = algorithm.get("advantage", "grpo")
    for result in results:
        batch, adv = result.batch, result.advantages.view_as(result.batch.rewards)
        rewards, valid = batch.rewards, batch.valid
        if algorithm.get("selection") == "raft":  # fine-tune on each group's best sample at or above the threshold
            keep = result.take_part.view_as(rewards)
            for i in range(rewards.shape[0]):
                for j in range(rewards.shape[1]):
                    if keep[i, j]:
                        assert rewards[i, j] == rewards[i][valid[i]].max() and rewards[i, j] >= 0.3
            assert torch.all(adv[keep] == 1.0)
            continue
        check, bound = _group_check(estimator)
        assert result.metrics["advantage_abs_max"] <= bound + 1e-5
        if check is not None:
            for i in range(rewards.shape[0]):
                for j in range(rewards.shape[1]):
                    if valid[i, j]:
                        assert float(adv[i, j]) == pytest.approx(check(rewards, valid, i, j), abs=1e-5)
        if estimator == "remax":
            assert torch.allclose(adv, (rewards - batch.greedy_rewards.view(-1, 1)) * valid, atol=1e-6)
        if estimator == "reinforce_pp":  # z-scored over the whole batch of KL-shaped rewards
            flat = adv[valid]
            assert abs(float(flat.mean())) < 1e-4 and float(flat.pow(2).mean().sqrt()) == pytest.approx(1.0, abs=1e-3)
        if estimator == "bnpo":  # the sign of r - group mean, scaled by 1 / Beta density
            mean = (rewards * valid).sum(1, keepdim=True) / valid.sum(1, keepdim=True)
            assert torch.equal(torch.sign(adv[valid]), torch.sign((rewards - mean)[valid]))
        if algorithm.get("selection") == "reinforce_rej" or algorithm.get("dynamic_sampling"):
            assert bool(alg.mixed_groups(rewards, valid).all())  # only groups that carry signal are trained on
    if algorithm.get("selection") == "reinforce_rej":
        assert all(r["groups_kept"] == r["groups_drawn"] - r["groups_uniform"] for r in seen)
    if algorithm.get("kl_coef") and not algorithm.get("kl_in_reward"):
        assert seen[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # the first update starts at the reference
        assert seen[1]["kl"] > 0


def test_lora_reference_is_the_base_with_adapters_off() -> None:
    config = toy_config(Path("unused"), model={"chat_template": False, "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]}})
    base = tiny_model(2)
    tok = tokenizer()
    batch = pack([tok("hello there")["input_ids"]], [tok(" general")["input_ids"]], tok.pad_token_id)
    with torch.no_grad():
        expected, _ = token_logprobs(base, batch)
    policy = load_training_policy(config.model, keep_reference=True, model=base, tokenizer=tok)
    trainable = sum(p.numel() for p in policy.trainable())
    assert 0 < trainable < sum(p.numel() for p in policy.model.parameters()) / 10
    with torch.no_grad():
        for name, parameter in policy.model.named_parameters():
            if "lora_B" in name:
                parameter.add_(0.5)  # move the adapters away from zero
        moved, _ = token_logprobs(policy.model, batch)
        with policy.reference() as reference:
            ref, _ = token_logprobs(reference, batch)
    assert torch.allclose(ref, expected, atol=1e-6)
    assert not torch.allclose(moved, expected, atol=1e-3)


def test_the_monitor_flags_a_planted_length_hack_in_the_first_steps_it_grows(tmp_path: Path) -> None:
    from tests.rl.toy import pays_for_length

    seen: list[dict] = []
    train(toy_config(tmp_path / "hack", steps=8, log={"progress": False, "tensorboard": False, "plot": False, "samples_every": 0,
                                                      "monitor_unit": "chars"}),
          model=tiny_model(), tokenizer=tokenizer(), reward=pays_for_length, train_rows=ROWS, eval_rows=[], on_step=seen.append)
    first_length = seen[0]["monitor/length_mean"]
    grown = [r["step"] for r in seen if r["monitor/length_mean"] > first_length * 1.05]
    flagged = [r["step"] for r in seen if any(w.startswith("length_reward") for w in r["warnings"])]
    assert grown, "the planted hack should make completions longer"
    assert flagged and flagged[0] <= grown[0] + 1, (grown, flagged)
    lines = (tmp_path / "hack" / "metrics.jsonl").read_text()
    assert "length_reward: reward tracks length" in lines  # the warning is in the step log too


def test_approx_kl_and_clip_fraction_measure_the_later_epochs(tmp_path: Path) -> None:
    one, three = [], []
    train(toy_config(tmp_path / "one", steps=2, algorithm={"epochs": 1}), model=tiny_model(), tokenizer=tokenizer(),
          reward=vowel_share, train_rows=ROWS, eval_rows=[], on_step=one.append)
    train(toy_config(tmp_path / "three", steps=2, algorithm={"epochs": 3}, optim={"lr": 0.2}), model=tiny_model(),
          tokenizer=tokenizer(), reward=vowel_share, train_rows=ROWS, eval_rows=[], on_step=three.append)
    assert all(r["approx_kl"] == 0.0 and r["clip_fraction"] == 0.0 for r in one)  # one epoch: the sampler's own policy
    assert max(r["approx_kl"] for r in three) > 1e-4  # later epochs moved away from the sampler
    assert max(r["clip_fraction"] for r in three) > 0.0  # and hit the clip range


def test_stop_strings_end_completions_without_training_on_the_padding() -> None:
    from payoff.models.rollout import HFGenerator, SamplingParams

    tok = tokenizer()
    generator = HFGenerator(tiny_model(), tok, batch_size=8)
    torch.manual_seed(0)
    rollouts = generator.generate([f"Write a word number {i}." for i in range(8)], SamplingParams(max_new_tokens=24, stop=["e"]))
    stopped = 0
    for ids, text, truncated in zip(rollouts.completion_ids, rollouts.texts, rollouts.truncated):
        decoded = tok.decode(ids, skip_special_tokens=True)
        if "e" in decoded:
            stopped += 1
            assert not truncated and decoded.count("e") >= 1
            assert "e" not in tok.decode(ids[:-1], skip_special_tokens=True)  # cut at the first token that completes the stop
            assert text.endswith("e") and text == decoded[: decoded.index("e") + 1]
        assert tok.pad_token_id not in ids[:-1] or tok.pad_token_id in generator.eos_ids
    assert stopped >= 4  # "e" is common enough that most of the 8 completions hit it
