"""payoff's multi-turn RL against TRL's multi-turn GRPO (TRL 1.16: `GRPOTrainer(environment_factory=...)`)
on one environment, model and batch shape, on a CPU. Each configuration runs in its own
subprocess, so its peak RSS is its own: payoff, TRL at its defaults, and TRL at its best CPU
setting (``gradient_checkpointing=False``: TRL's GRPOConfig turns checkpointing on by default,
which recomputes every activation in the backward pass, a loss of time and no gain in memory worth
having for a 135M model). Reports the median seconds of the timed steps (after ``--warmup``
steps), the peak RSS, and held-out accuracy at the first answer and within the episode's turns.

    .venv/bin/python benchmarks/multiturn_vs_trl.py [--models smollm2] [--steps 3] [--warmup 1]

The environment, on both sides, is payoff's ``calculator`` (a tool the model may call, Hermes
``<tool_call>`` blocks; reward ``math`` on the final answer), not ``feedback``: TRL's loop
continues only while the model calls tools and ends the rollout at the first assistant turn
without one, so it can never show the model a user turn saying "try again"
(`payoff.integrations.trl_env` refuses such environments for that reason). TRL runs it through
payoff's adapter (`trl_environment("calculator")`: its ``factory`` and ``reward_func``), payoff as
``[env] name = "calculator"``. Both use TRL's Qwen2.5 ChatML template with tool support (the
SmolLM2 tokenizer shares its special tokens, and TRL parses tool calls only for templates it
knows), the same prompts, G, P, learning rate and loss (token mean, no KL), up to ``NEW_TOKENS``
sampled per turn (TRL: ``generation_kwargs.max_new_tokens``) and up to ``TURNS`` assistant turns
(TRL: ``max_tool_calling_iterations = TURNS - 1``).

Accuracy is measured the same way for both trained models: payoff's greedy episode player
(`payoff.models.episodes.play`) on the same held-out rows and environment. In this environment
the episode ends at the first answer (a turn without a tool call), so the first answer is the
final one and "first" equals "within 3 turns" by construction; the turns are tool calls.

Figures and what they do and do not show: docs/train.md ("Multi-turn against TRL").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROMPTS, GROUP, NEW_TOKENS, LR, TURNS, EVAL, TRAIN_ROWS = 4, 4, 48, 1e-5, 3, 16, 200
COMPLETION_BUDGET = 384  # tokens after the prompt, all turns and tool results (TRL's max_completion_length)
ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = ("payoff", "trl", "trl-best")
# Also accepted by --frameworks: payoff's memory-lean setting, the loss and backward pass in
# micro-batches of 4 episodes (the counterpart of TRL's default gradient checkpointing).
LEAN_MICRO_BATCH = 4


def rows(n: int, seed: int) -> list[dict]:
    from payoff.tasks import arithmetic

    return [{"prompt": r["prompt"], "reference": r["reference"]} for r in arithmetic(n, seed=seed, level=1)]


def chatml_with_tools(tokenizer: Any) -> Any:
    from trl.chat_template_utils import qwen2_5_chat_template

    tokenizer.chat_template = qwen2_5_chat_template
    tokenizer.padding_side = "left"
    return tokenizer


def model_dir(kind: str, scratch: Path) -> Path:
    if kind == "smollm2":
        from payoff.models.default import policy_path

        return policy_path()
    target = scratch / "tiny-llama"
    if not (target / "config.json").exists():
        sys.path.insert(0, str(ROOT))
        from tests.rl.toy import save_tiny

        save_tiny(target)
    return target


def heldout(model: Any, tokenizer: Any) -> dict[str, float]:
    """Greedy episodes on the held-out rows: the first answer right, the final answer right, and
    the tool calls per episode."""
    from payoff.core import Sample
    from payoff.models.episodes import Limits, env_factory, final_text, play
    from payoff.models.rollout import HFGenerator, SamplingParams
    from payoff.registry import get_reward

    math = get_reward("math")

    def right(text: str, reference: str) -> bool:
        outcome = math.score_one(Sample(completion=text, reference=reference))
        return outcome.status == "ok" and (outcome.score or 0) >= 1.0

    model.eval()
    records, _ = play(HFGenerator(model, tokenizer, 64), tokenizer, rows(EVAL, seed=99), env_factory("calculator", {}, "math"),
                      SamplingParams(NEW_TOKENS), Limits(max_turns=TURNS, max_tool_calls=TURNS, max_tokens=2048), greedy=True)
    first = [bool(r.answers()) and right(r.answers()[0].get("content") or "", r.row["reference"]) for r in records]
    final = [right(final_text(r), r.row["reference"]) for r in records]
    return {"first_try": sum(first) / len(records), "within_k": sum(final) / len(records),
            "heldout_tool_calls": sum(r.tool_calls for r in records) / len(records)}


def run_payoff(path: Path, steps: int, out: Path, micro_batch: int = PROMPTS * GROUP) -> dict[str, Any]:
    from payoff.models.default import load_policy
    from payoff.rl.config import TrainConfig
    from payoff.rl.loop import train

    rows_seen: list[dict] = []
    model, tokenizer = load_policy(str(path))
    chatml_with_tools(tokenizer)
    before = heldout(model, tokenizer)
    config = TrainConfig.model_validate({
        "seed": 0, "steps": steps, "run_dir": str(out / "payoff"), "checkpoint_every": 0, "reward": "math",
        "model": {"name": str(path)}, "task": {"eval_size": 0},
        "env": {"name": "calculator", "max_turns": TURNS, "max_tool_calls": TURNS, "max_tokens": 2048},
        "rollout": {"group_size": GROUP, "prompts_per_step": PROMPTS, "max_new_tokens": NEW_TOKENS, "batch_size": PROMPTS * GROUP},
        "algorithm": {"advantage": "grpo", "loss_aggregation": "token_mean"},
        "optim": {"lr": LR, "micro_batch": micro_batch}, "engine": {"workers": 0},
        "log": {"progress": False, "tensorboard": False, "plot": False, "samples_every": 0, "monitor": False}})
    train(config, model=model, tokenizer=tokenizer, train_rows=rows(TRAIN_ROWS, seed=11), eval_rows=[], on_step=rows_seen.append)
    return {"times": [r["time_step"] for r in rows_seen], "before": before, **heldout(model, tokenizer),
            "time_generate": [r.get("time_generate") for r in rows_seen], "time_env": [r.get("time_env") for r in rows_seen],
            "tool_calls": [r.get("episode/tool_calls") for r in rows_seen]}


def run_trl(path: Path, steps: int, out: Path, best: bool) -> dict[str, Any]:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from payoff.integrations.trl_env import trl_environment

    times: list[float] = []
    logs: list[dict] = []

    class StepClock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.began = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter() - self.began)

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs_seen.append(dict(logs or {}))

    logs_seen = logs
    env = trl_environment("calculator", reward="math", workers=0)
    data = Dataset.from_list(env.rows(rows(TRAIN_ROWS, seed=11)))
    tokenizer = chatml_with_tools(AutoTokenizer.from_pretrained(path))
    model = AutoModelForCausalLM.from_pretrained(path, dtype="float32")
    best_settings = {"gradient_checkpointing": False} if best else {}
    config = GRPOConfig(output_dir=str(out / "trl"), use_cpu=True, bf16=False, learning_rate=LR, max_steps=steps,
                        per_device_train_batch_size=PROMPTS * GROUP, gradient_accumulation_steps=1, num_generations=GROUP,
                        max_completion_length=COMPLETION_BUDGET, generation_kwargs={"max_new_tokens": NEW_TOKENS},
                        max_tool_calling_iterations=TURNS - 1, temperature=1.0, beta=0.0, loss_type="dapo", scale_rewards="group",
                        num_iterations=1, steps_per_generation=1, logging_steps=1, report_to="none", save_strategy="no", seed=0,
                        dataloader_num_workers=0, disable_tqdm=True, **best_settings)
    trainer = GRPOTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer, reward_funcs=[env.reward_func],
                          environment_factory=env.factory, callbacks=[StepClock()])
    trainer.train()
    return {"times": times, **heldout(trainer.model, tokenizer),
            "tool_calls": [row.get("tools/call_frequency") for row in logs if "tools/call_frequency" in row]}


def child(framework: str, kind: str, steps: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = model_dir(kind, Path(scratch))
        if framework.startswith("payoff"):
            result = run_payoff(path, steps, Path(scratch), LEAN_MICRO_BATCH if framework == "payoff-lean" else PROMPTS * GROUP)
        else:
            result = run_trl(path, steps, Path(scratch), framework == "trl-best")
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="smollm2")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (their median is reported)")
    parser.add_argument("--warmup", type=int, default=1, help="steps run first and not timed")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS), help="a comma list of payoff, payoff-lean, trl, trl-best")
    parser.add_argument("--child", nargs=2, metavar=("FRAMEWORK", "MODEL"))
    args = parser.parse_args()
    total = args.steps + args.warmup
    if args.child:
        child(args.child[0], args.child[1], total)
        return
    frameworks = args.frameworks.split(",")
    results: dict[tuple[str, str], dict] = {}
    for kind in args.models.split(","):
        for framework in frameworks:
            began = time.perf_counter()
            done = subprocess.run([sys.executable, __file__, "--child", framework, kind, "--steps", str(total), "--warmup", "0"],
                                  capture_output=True, text=True)
            line = next((row for row in done.stdout.splitlines() if row.startswith("RESULT ")), None)
            if line is None:
                print(done.stdout[-2000:], done.stderr[-6000:], file=sys.stderr)
                raise SystemExit(f"{framework} on {kind} failed")
            result = results[(kind, framework)] = json.loads(line[7:])
            result["step"] = statistics.median(result["times"][args.warmup:])
            extra = f", before: first {result['before']['first_try']:.0%}" if "before" in result else ""
            print(f"{kind} {framework}: steps {[round(t, 2) for t in result['times']]} s, peak RSS {result['peak_rss_mb']:.0f} MB, "
                  f"first answer {result['first_try']:.0%}, within {TURNS} turns {result['within_k']:.0%}, "
                  f"held-out tool calls/episode {result['heldout_tool_calls']:.2f}, training tool calls {result['tool_calls']}{extra}, "
                  f"process wall {time.perf_counter() - began:.0f} s", flush=True)
    print(f"\ncalculator env; {PROMPTS} prompts x {GROUP} episodes a step, up to {TURNS} turns of {NEW_TOKENS} new tokens; "
          f"median of {args.steps} timed steps after {args.warmup} warm-up; accuracy on {EVAL} held-out prompts, greedy; "
          f"load average before: {os.getloadavg()[0]:.2f}\n")
    print("| model | framework | s/step | payoff / this | peak RSS MB | held-out first answer | within 3 turns |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for kind in args.models.split(","):
        base = results.get((kind, "payoff"))
        if base and "before" in base:
            print(f"| {kind} | (before training) | | | | {base['before']['first_try']:.0%} | {base['before']['within_k']:.0%} |")
        for framework in frameworks:
            r = results[(kind, framework)]
            ratio = f"{base['step'] / r['step']:.2f}" if base else ""
            print(f"| {kind} | {framework} | {r['step']:.2f} | {ratio} | {r['peak_rss_mb']:.0f} | {r['first_try']:.0%} | {r['within_k']:.0%} |")


if __name__ == "__main__":
    main()
