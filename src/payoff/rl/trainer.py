"""One RL step: sample groups, score them as one `payoff score` call, select, estimate
advantages, update. Each algorithm is a pure function in `payoff.rl.algorithms`; this file only
sequences them. The trainer owns the RL run's state (`RLState`) and what a checkpoint holds
besides the step count (`payoff.runs.run.Run`'s)."""

from __future__ import annotations

import json
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from payoff.compose.rubric import Rubric
from payoff.core import Reward
from payoff.models.policy import Policy, load_training_policy
from payoff.models.rollout import Generator, HFGenerator, render_prompt
from payoff.rl import algorithms as alg
from payoff.rl.batch import Batch, Estimate, collect, sampling_params
from payoff.rl.config import TrainConfig
from payoff.rl.scoring import RolloutScorer
from payoff.rl.state import RLState
from payoff.rl.update import policy_update
from payoff.runs.optim import adamw, learning_rate, set_learning_rate


def reward_from_config(spec: str | dict[str, Any]) -> Reward:
    """The reward ``[reward]`` names: a registered name or spec, or a rubric table."""
    from payoff.registry import get_reward

    if isinstance(spec, dict):
        from payoff.compose.config import rubric_from_dict

        return rubric_from_dict(spec, source="[reward]")
    return get_reward(spec)


@dataclass
class StepResult:
    """What one `Trainer.train_step` did: its metrics, the scored batch it trained on, and the
    advantages (per sample [N], or per token: N 1-D tensors) with the mask of samples that took
    part in the loss [N]."""

    metrics: dict[str, Any]
    batch: Batch
    advantages: torch.Tensor | list[torch.Tensor]
    take_part: torch.Tensor


class Trainer:
    """``Trainer(config)``, then `train_step` until ``config.steps`` (`payoff.rl.loop.train` runs
    the whole job; its `Run` seeds the random streams first). ``model``/``tokenizer``/``reward``/
    ``rows`` may be passed directly (tests use a tiny random model and toy rewards)."""

    def __init__(self, config: TrainConfig, model: Any = None, tokenizer: Any = None, reward: Reward | None = None,
                 train_rows: list[dict[str, Any]] | None = None, eval_rows: list[dict[str, Any]] | None = None,
                 on_step: Callable[[dict[str, Any]], None] | None = None,
                 on_result: Callable[[StepResult], None] | None = None) -> None:
        self.config = config
        self.on_step = on_step
        self.on_result = on_result  # sees each step's batch and advantages (tests, custom logging)
        self.state = RLState(success_history=deque(maxlen=config.algorithm.bnpo_window * config.rollout.prompts_per_step))
        self.reward = reward if reward is not None else reward_from_config(config.reward)
        terms = [t.name for t in self.reward.terms] if isinstance(self.reward, Rubric) else []
        named = config.accuracy_reward
        self.component = named or ("math" if "math" in terms else None)
        # accuracy_reward names a reward that is not a term of this one: it is scored beside it
        # (AccuracyJoin); when it is the reward itself, the reward's score is the verdict
        self.accuracy_join = named if named and named not in terms else None
        if self.accuracy_join is not None and self.accuracy_join == self.reward.name:
            self.accuracy_join = self.component = None
        self.train_rows, self.eval_rows = train_rows, eval_rows
        if self.train_rows is None or self.eval_rows is None:
            self._make_rows()
        keep_reference = config.algorithm.kl_coef > 0
        self.critic = self.critic_optimizer = None
        if config.algorithm.advantage == "gae":  # PPO: a value model beside the policy (before LoRA wraps it)
            from payoff.rl.critic import load_critic

            self.critic = load_critic(config.critic.model, config.model.name, model)
            self.critic_optimizer = adamw(self.critic.parameters(), config.critic.lr, config.optim.betas)
        self.policy: Policy = load_training_policy(config.model, keep_reference, model, tokenizer)
        self.optimizer = adamw(self.policy.trainable(), config.optim.lr, config.optim.betas, config.optim.weight_decay)
        self.generator = self._make_generator()
        self.eval_params = sampling_params(config.rollout, config.eval.max_new_tokens)
        self.monitor = None
        if config.log.monitor:
            from payoff.audit.monitors import HackingMonitor

            self.monitor = HackingMonitor(unit=config.log.monitor_unit)

    # -- setup ---------------------------------------------------------------------------------
    def _make_rows(self) -> None:
        from payoff.tasks.loader import task_rows

        task = self.config.task
        if self.eval_rows is None:
            self.eval_rows = task_rows(task.kind, task.eval_size, task.eval_seed, **dict(task.eval_options or task.options)) if task.eval_size else []
        if self.train_rows is None:
            held_out = {row["prompt"] if isinstance(row["prompt"], str) else json.dumps(row["prompt"]) for row in self.eval_rows}
            rows = task_rows(task.kind, task.train_size, task.train_seed, **dict(task.options))
            # Held-out prompts never appear in training, whatever the seeds.
            self.train_rows = [row for row in rows if (row["prompt"] if isinstance(row["prompt"],
                str) else json.dumps(row["prompt"])) not in held_out]
            if not self.train_rows:
                raise ValueError("every training row is also a held-out row; use a larger task or other seeds")

    def _make_generator(self) -> Generator:
        backend = self.config.rollout.backend
        if backend in ("vllm", "auto") and self.config.env is None:
            from payoff.models.vllm_backend import VLLMGenerator, vllm_available

            if vllm_available():
                return VLLMGenerator(self.policy, self.config)
            if backend == "vllm":
                raise RuntimeError("rollout.backend = 'vllm' needs the vllm package and a GPU; use 'hf' or 'auto'")
        return HFGenerator(self.policy.model, self.policy.tokenizer, self.config.rollout.batch_size)

    def render(self, rows: list[dict[str, Any]]) -> list[str]:
        m = self.config.model
        return [render_prompt(self.policy.tokenizer, row["prompt"], m.chat_template, m.system) for row in rows]

    # -- what a checkpoint holds besides the weights, the optimisers and the random streams -------
    def state_dict(self) -> dict[str, Any]:
        return {**self.state.state_dict(), "shapers": self.reward.state_dict() if isinstance(self.reward, Rubric) else [],
                "monitor": self.monitor.state_dict() if self.monitor is not None else None}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """What `state_dict` gave; nothing (a fresh run) leaves everything as it is."""
        if not saved:
            return
        self.state.load_state_dict(saved)
        if isinstance(self.reward, Rubric):
            self.reward.load_state_dict(saved.get("shapers") or [])
        if self.monitor is not None and saved.get("monitor"):
            self.monitor.load_state_dict(saved["monitor"])

    def parts(self) -> dict[str, Any]:
        """What a checkpoint holds besides the policy and its optimiser: PPO's critic."""
        if self.critic is None:
            return {}
        return {"critic": self.critic, "critic_optimizer": self.critic_optimizer}

    # -- data ----------------------------------------------------------------------------------
    def next_rows(self, count: int) -> list[dict[str, Any]]:
        rows = []
        n = len(self.train_rows)
        for _ in range(count):
            epoch, index = divmod(self.state.position, n)
            order = list(range(n))
            random.Random(self.config.seed * 1_000_003 + epoch).shuffle(order)
            rows.append(self.train_rows[order[index]])
            self.state.position += 1
        return rows

    # -- one step ------------------------------------------------------------------------------
    def gather(self, scorer: RolloutScorer, step: int) -> tuple[Batch, dict[str, float]]:
        """Rollouts for one step, after Reinforce-Rej / DAPO dynamic-sampling selection. Each
        draw is one scoring call: a refill is drawn only once the draw before it is scored."""
        cfg, algo = self.config, self.config.algorithm
        want = cfg.rollout.prompts_per_step
        parts, kept, refills, drawn = [], 0, 0, []
        while True:
            rows = self.next_rows(want if not parts else want - kept)
            if cfg.env is not None:  # multi-turn: each sample is an episode
                from payoff.rl.episode_batch import collect_episodes

                batch = collect_episodes(self.generator, self.policy.tokenizer, scorer, rows, cfg, step, self.component)
            else:
                batch = collect(self.generator, scorer, rows, self.render(rows), cfg, step, self.component)
            drawn.append(batch)
            if algo.selection == "reinforce_rej" or algo.dynamic_sampling:
                batch = batch.select_groups(alg.mixed_groups(batch.rewards, batch.valid))
            if algo.std_filter:
                keep, self.state.std_threshold = alg.std_filter(batch.rewards, batch.valid, self.state.std_threshold,
                                                                algo.std_filter_momentum)
                batch = batch.select_groups(keep)
            parts.append(batch)
            kept += len(batch.rows)
            if not algo.dynamic_sampling or kept >= want or refills >= algo.max_refills:
                break
            refills += 1
        everything = Batch.concat(drawn)
        chosen = Batch.concat(parts)
        if len(chosen.rows) > want:
            chosen = chosen.select_groups(torch.arange(len(chosen.rows)) < want)
        # BNPO's Beta describes how success rates spread across prompts: one rate per prompt group.
        self.state.success_history.extend(alg.group_success_rates(everything.correct, everything.valid).tolist())
        return chosen, rollout_metrics(everything, chosen, refills)

    def estimate(self, batch: Batch) -> Estimate:
        """Advantages (per sample [N], or per token: a list of N 1-D tensors), which samples take
        part in the loss [N], and what the estimator computed on the way."""
        algo = self.config.algorithm
        rewards = batch.rewards.clone()
        if algo.selection == "raft":
            keep = alg.raft_keep(rewards, batch.valid, algo.raft_mode, algo.raft_threshold)
            return Estimate(torch.ones(keep.numel()), keep.flatten())
        if algo.advantage in alg.TOKEN_LEVEL:
            from payoff.rl.token_context import token_estimate

            return token_estimate(self.config, self.policy, self.critic, batch, rewards)
        if algo.kl_coef > 0 and algo.kl_in_reward:
            rewards = rewards - algo.kl_coef * self._sequence_kl(batch).view_as(rewards)
        wanted = alg.estimator_context(algo.advantage)
        context: dict[str, Any] = {"greedy_rewards": batch.greedy_rewards, "baseline": algo.reinforce_baseline}
        if "beta_params" in wanted:
            context["beta_params"] = alg.beta_fit(torch.tensor(list(self.state.success_history)))
        adv = alg.advantages(algo.advantage, rewards, batch.valid, **context)
        return Estimate(adv.flatten(), batch.valid.flatten())

    def _sequence_kl(self, batch: Batch) -> torch.Tensor:
        """Summed per-token KL estimate of each sample against the reference (REINFORCE++)."""
        from payoff.models.logprobs import batched_logprobs

        r, mb, t = batch.rollouts, self.config.optim.micro_batch, self.config.rollout.temperature or 1.0
        masks = [r.loss_mask(i) for i in range(len(r))]  # an episode's environment tokens are not the policy's
        logp = batched_logprobs(self.policy.model, r.prompt_ids, r.completion_ids, self.policy.pad_id, mb, t, masks)
        with self.policy.reference() as reference:
            ref = batched_logprobs(reference, r.prompt_ids, r.completion_ids, self.policy.pad_id, mb, t, masks)
        return torch.stack([alg.kl_estimate(a, b, self.config.algorithm.kl_estimator).sum() for a, b in zip(logp, ref)])

    def out_of_time(self) -> bool:
        """``time_budget_s`` spent: runs compared at equal training time stop here."""
        budget = self.config.time_budget_s
        return budget is not None and self.state.train_seconds >= budget

    def train_step(self, scorer: RolloutScorer, step: int) -> StepResult:
        """Training step ``step`` (0-based; the run counts them)."""
        cfg = self.config
        began = time.perf_counter()
        batch, metrics = self.gather(scorer, step)
        estimate = self.estimate(batch)
        set_learning_rate(self.optimizer, learning_rate(step, cfg.optim.lr, cfg.steps, cfg.optim.warmup_steps, "constant"))
        trained = time.perf_counter()
        metrics.update(policy_update(self.policy, self.optimizer, batch.rollouts, estimate, cfg, seed=cfg.seed * 7907 + step))
        if self.critic is not None:
            from payoff.rl.critic import critic_update

            metrics.update(critic_update(self.critic, self.critic_optimizer, batch.rollouts, estimate, self.policy.pad_id, cfg,
                                         cfg.seed * 7919 + step))
        metrics.update(estimate.metrics)
        if cfg.algorithm.std_filter:
            metrics["std_threshold"] = self.state.std_threshold
        self.generator.weights_changed()
        metrics["time_train"] = time.perf_counter() - trained
        metrics["time_step"] = time.perf_counter() - began
        metrics["lr"] = self.optimizer.param_groups[0]["lr"]
        adv, take_part = estimate.advantages, estimate.take_part
        used = torch.cat([adv[i] for i in range(len(adv)) if take_part[i]] or [torch.zeros(0)]) if isinstance(adv, list) else adv[take_part]
        metrics["advantage_abs_mean"] = float(used.abs().mean()) if used.numel() else 0.0
        metrics["advantage_abs_max"] = float(used.abs().max()) if used.numel() else 0.0
        self.state.train_seconds += metrics["time_step"]
        return StepResult(metrics, batch, adv, take_part)


def rollout_metrics(everything: Batch, chosen: Batch, refills: int) -> dict[str, float]:
    """What a researcher checks about a step's rollouts: every draw (``everything``), and what
    selection kept (``chosen``)."""
    statuses = Counter(o.status for o in everything.outcomes)
    scored = [o.score for o in everything.outcomes if o.score is not None]
    lengths = [everything.rollouts.trained_tokens(i) for i in range(len(everything.rollouts))]  # an episode's: the policy's tokens
    components: dict[str, list[float]] = {}
    for outcome in everything.outcomes:
        for key, value in outcome.components.items():
            components.setdefault(key, []).append(value)
    metrics = {
        "reward_mean": sum(scored) / len(scored) if scored else 0.0,
        "accuracy": float(everything.correct.float().mean()),
        "completion_length": sum(lengths) / len(lengths) if lengths else 0.0,
        "truncated": sum(everything.rollouts.truncated) / max(len(lengths), 1),
        "groups_drawn": float(len(everything.rows)),
        "groups_kept": float(len(chosen.rows)),
        "groups_uniform": float((~alg.mixed_groups(everything.rewards, everything.valid)).sum()),
        "refills": float(refills),
        "masked": float((~everything.valid).sum()),
        "time_generate": everything.seconds.get("generate", 0.0),
        "time_score_wait": everything.seconds.get("score_wait", 0.0),
        "tokens_per_s": sum(lengths) / max(everything.seconds.get("generate", 0.0), 1e-9),
    }
    for status in ("ok", "abstain", "error", "timeout"):
        metrics[f"status/{status}"] = float(statuses.get(status, 0))
    for key, values in components.items():
        metrics[f"reward/{key}"] = sum(values) / len(values)
    if everything.episodes is not None:
        from payoff.rl.episode_batch import episode_metrics

        metrics.update(episode_metrics(everything))
    return metrics
