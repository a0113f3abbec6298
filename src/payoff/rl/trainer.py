"""The RL loop: sample groups, score them through the engine, select, estimate advantages,
update, log, checkpoint. Each algorithm is a pure function in `payoff.rl.algorithms`; this file
only sequences them."""

from __future__ import annotations

import json
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from payoff.models.policy import Policy, load_training_policy
from payoff.models.rollout import HFGenerator, SamplingParams, render_prompt
from payoff.rl import algorithms as alg
from payoff.rl.batch import Batch, collect
from payoff.rl.config import TrainConfig
from payoff.rl.update import policy_update
from payoff.runs.optim import adamw


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_reward(spec: str | dict[str, Any]) -> Any:
    from payoff.registry import get_reward

    if isinstance(spec, dict):
        from payoff.compose.config import rubric_from_dict

        return rubric_from_dict(spec, source="[reward]")
    return get_reward(spec)



@dataclass
class StepResult:
    """What one `Trainer.train_step` did: its metrics, the scored batch it trained on, and the
    per-sample advantages [N] with the mask of samples that took part in the loss [N]."""

    metrics: dict[str, Any]
    batch: Batch
    advantages: torch.Tensor
    take_part: torch.Tensor

class Trainer:
    """``Trainer(config).train()``; ``model``/``tokenizer``/``reward``/``rows`` may be passed
    directly (tests use a tiny random model and toy rewards)."""

    def __init__(self, config: TrainConfig, model: Any = None, tokenizer: Any = None, reward: Any = None,
                 train_rows: list[dict[str, Any]] | None = None, eval_rows: list[dict[str, Any]] | None = None,
                 on_step: Callable[[dict[str, Any]], None] | None = None,
                 on_result: Callable[[StepResult], None] | None = None) -> None:
        self.config = config
        self.run_dir = Path(config.run_dir)
        self.on_step = on_step
        self.on_result = on_result  # sees each step's batch and advantages (tests, custom logging)
        self.started, self.wall_before = time.perf_counter(), 0.0  # wall time, across resumes
        seed_everything(config.seed)
        self.reward = reward if reward is not None else build_reward(config.reward)
        terms = [t.name for t in getattr(self.reward, "terms", [])]
        named = config.accuracy_reward
        self.component = named or ("math" if "math" in terms else None)
        # accuracy_reward names a reward that is not a term of this one: it is scored beside it
        # (AccuracyJoin); when it is the reward itself, the reward's score is the verdict
        self.accuracy_join = named if named and named not in terms else None
        if self.accuracy_join is not None and self.accuracy_join == getattr(self.reward, "name", None):
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
        # What this step's token-level estimator computed for the update: old log-probs, the
        # critic's values and returns (gae), and its metrics.
        self.token_state: dict[str, Any] = {}
        self.std_threshold = 0.0  # RLPR's std filter: an EMA of the batches' mean group std
        self.train_seconds = 0.0  # time in training steps (held-out evaluation excluded), across resumes
        self.generator = self._make_generator()
        r = config.rollout
        self.params = SamplingParams(r.max_new_tokens, r.temperature, r.top_p, r.top_k, list(r.stop))
        self.eval_params = SamplingParams(config.eval.max_new_tokens or r.max_new_tokens, r.temperature, r.top_p, r.top_k, list(r.stop))
        self.step = 0
        self.position = 0  # index into the shuffled training rows
        # Per-prompt success rates of the last `bnpo_window` steps (BNPO fits its Beta to them).
        self.success_history: deque[float] = deque(maxlen=config.algorithm.bnpo_window * config.rollout.prompts_per_step)
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

    def _make_generator(self) -> Any:
        backend = self.config.rollout.backend
        if backend in ("vllm", "auto"):
            from payoff.models.vllm_backend import VLLMGenerator, vllm_available

            if vllm_available():
                return VLLMGenerator(self.policy, self.config)
            if backend == "vllm":
                raise RuntimeError("rollout.backend = 'vllm' needs the vllm package and a GPU; use 'hf' or 'auto'")
        return HFGenerator(self.policy.model, self.policy.tokenizer, self.config.rollout.batch_size)

    def render(self, rows: list[dict[str, Any]]) -> list[str]:
        m = self.config.model
        return [render_prompt(self.policy.tokenizer, row["prompt"], m.chat_template, m.system) for row in rows]

    # -- data ----------------------------------------------------------------------------------
    def next_rows(self, count: int) -> list[dict[str, Any]]:
        rows = []
        n = len(self.train_rows)
        for _ in range(count):
            epoch, index = divmod(self.position, n)
            order = list(range(n))
            random.Random(self.config.seed * 1_000_003 + epoch).shuffle(order)
            rows.append(self.train_rows[order[index]])
            self.position += 1
        return rows

    # -- one step ------------------------------------------------------------------------------
    def gather(self, engine: Any) -> tuple[Batch, dict[str, float]]:
        """Rollouts for one step, after Reinforce-Rej / DAPO dynamic-sampling selection."""
        cfg, algo = self.config, self.config.algorithm
        want = cfg.rollout.prompts_per_step
        parts, kept, refills, drawn = [], 0, 0, []
        while True:
            rows = self.next_rows(want if not parts else want - kept)
            batch = collect(self.generator, engine, rows, self.render(rows), self.params, cfg.rollout.group_size, self.step,
                            algo.on_error, self.component, cfg.eval.threshold, cfg.rollout.batch_size,
                            greedy_baseline="greedy_rewards" in alg.estimator_context(algo.advantage))
            drawn.append(batch)
            if algo.selection == "reinforce_rej" or algo.dynamic_sampling:
                batch = batch.select_groups(alg.mixed_groups(batch.rewards, batch.valid))
            if algo.std_filter:
                batch = batch.select_groups(self._std_keep(batch))
            parts.append(batch)
            kept += len(batch.rows)
            if not algo.dynamic_sampling or kept >= want or refills >= algo.max_refills:
                break
            refills += 1
        everything = Batch.concat(drawn)
        chosen = Batch.concat(parts)
        if len(chosen.rows) > want:
            chosen = chosen.select_groups(torch.arange(len(chosen.rows)) < want)
        return chosen, self._rollout_metrics(everything, chosen, refills)

    def _rollout_metrics(self, everything: Batch, chosen: Batch, refills: int) -> dict[str, float]:
        statuses = Counter(o.status for o in everything.outcomes)
        scored = [o.score for o in everything.outcomes if o.score is not None]
        lengths = [len(c) for c in everything.rollouts.completion_ids]
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
        # BNPO's Beta describes how success rates spread across prompts: one rate per prompt group.
        self.success_history.extend(alg.group_success_rates(everything.correct, everything.valid).tolist())
        return metrics

    def _std_keep(self, batch: Batch) -> torch.Tensor:
        """RLPR's std filter: keep the groups whose reward std reaches the threshold, then move
        the threshold towards this batch's mean group std (an EMA)."""
        valid = batch.valid.float()
        count = valid.sum(dim=1).clamp(min=1)
        mean = (batch.rewards * valid).sum(dim=1, keepdim=True) / count.unsqueeze(1)
        std = ((((batch.rewards - mean) ** 2) * valid).sum(dim=1) / count).sqrt()
        keep = std >= self.std_threshold
        momentum = self.config.algorithm.std_filter_momentum
        self.std_threshold = momentum * self.std_threshold + (1 - momentum) * float(std.mean())
        return keep

    def estimate(self, batch: Batch) -> tuple[Any, torch.Tensor]:
        """Advantages (per sample [N], or per token: a list of N 1-D tensors) and which samples
        take part in the loss [N]."""
        algo = self.config.algorithm
        rewards = batch.rewards.clone()
        if algo.selection == "raft":
            keep = alg.raft_keep(rewards, batch.valid, algo.raft_mode, algo.raft_threshold)
            return torch.ones(keep.numel()), keep.flatten()
        if algo.advantage in alg.TOKEN_LEVEL:
            from payoff.rl.token_context import token_advantages

            return token_advantages(self, batch, rewards), batch.valid.flatten()
        if algo.kl_coef > 0 and algo.kl_in_reward:
            rewards = rewards - algo.kl_coef * self._sequence_kl(batch).view_as(rewards)
        wanted = alg.estimator_context(algo.advantage)
        context: dict[str, Any] = {"greedy_rewards": batch.greedy_rewards, "baseline": algo.reinforce_baseline}
        if "beta_params" in wanted:
            context["beta_params"] = alg.beta_fit(torch.tensor(list(self.success_history)))
        adv = alg.advantages(algo.advantage, rewards, batch.valid, **context)
        return adv.flatten(), batch.valid.flatten()

    def _sequence_kl(self, batch: Batch) -> torch.Tensor:
        """Summed per-token KL estimate of each sample against the reference (REINFORCE++)."""
        from payoff.models.logprobs import batched_logprobs

        r, mb, t = batch.rollouts, self.config.optim.micro_batch, self.config.rollout.temperature or 1.0
        logp = batched_logprobs(self.policy.model, r.prompt_ids, r.completion_ids, self.policy.pad_id, mb, t)
        with self.policy.reference() as reference:
            ref = batched_logprobs(reference, r.prompt_ids, r.completion_ids, self.policy.pad_id, mb, t)
        return torch.stack([alg.kl_estimate(a, b, self.config.algorithm.kl_estimator).sum() for a, b in zip(logp, ref)])

    def out_of_time(self) -> bool:
        """``time_budget_s`` spent: runs compared at equal training time stop here."""
        budget = self.config.time_budget_s
        return budget is not None and self.train_seconds >= budget

    def wall_seconds(self) -> float:
        """Seconds this run has taken so far, the runs before a resume included."""
        return self.wall_before + time.perf_counter() - self.started

    def train_step(self, engine: Any) -> StepResult:
        cfg = self.config
        began = time.perf_counter()
        batch, metrics = self.gather(engine)
        adv, take_part = self.estimate(batch)
        for lr_group in self.optimizer.param_groups:
            warm = cfg.optim.warmup_steps
            lr_group["lr"] = cfg.optim.lr * min(1.0, (self.step + 1) / warm) if warm else cfg.optim.lr
        trained = time.perf_counter()
        stats = policy_update(self.policy, self.optimizer, batch.rollouts.prompt_ids, batch.rollouts.completion_ids, adv, take_part,
                              cfg.algorithm, cfg.optim.micro_batch, cfg.rollout.temperature or 1.0, cfg.rollout.max_new_tokens,
                              cfg.optim.max_grad_norm, sft=cfg.algorithm.selection == "raft",
                              old_logprobs=self.token_state.get("old_logprobs"), seed=cfg.seed * 7907 + self.step)
        metrics.update(stats)
        if self.critic is not None:
            from payoff.rl.critic import critic_update

            members = [i for i in range(len(take_part)) if take_part[i]]
            metrics.update(critic_update(self.critic, self.critic_optimizer, batch.rollouts.prompt_ids, batch.rollouts.completion_ids,
                                         self.token_state["returns"], self.token_state["values"], members, self.policy.pad_id,
                                         cfg.algorithm.epochs,
                                         cfg.algorithm.minibatches, cfg.optim.micro_batch, cfg.critic.value_clip,
                                         cfg.critic.max_grad_norm, cfg.seed * 7919 + self.step))
        metrics.update(self.token_state.get("metrics", {}))
        self.token_state = {}
        if cfg.algorithm.std_filter:
            metrics["std_threshold"] = self.std_threshold
        if hasattr(self.generator, "version"):
            self.generator.version += 1  # vLLM must load the new weights before the next rollouts
        metrics["time_train"] = time.perf_counter() - trained
        metrics["time_step"] = time.perf_counter() - began
        metrics["lr"] = self.optimizer.param_groups[0]["lr"]
        used = torch.cat([adv[i] for i in range(len(adv)) if take_part[i]] or [torch.zeros(0)]) if isinstance(adv, list) else adv[take_part]
        metrics["advantage_abs_mean"] = float(used.abs().mean()) if used.numel() else 0.0
        metrics["advantage_abs_max"] = float(used.abs().max()) if used.numel() else 0.0
        return StepResult(metrics, batch, adv, take_part)
