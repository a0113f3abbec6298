"""payoff's multi-turn RL against TRL's multi-turn GRPO (TRL 1.16: `GRPOTrainer(environment_factory=...)`)
on one feedback environment, model and batch shape, on a CPU. Each (framework, repeat) runs in a
fresh subprocess, so peak RSS is that run's own. Reports the median seconds per step (the first
step excluded), the peak RSS, and held-out accuracy at the first try and within 3 tries after
training; medians of ``--repeats`` runs.

    .venv/bin/python benchmarks/multiturn_vs_trl.py [--models tiny,smollm2] [--repeats 3] [--steps 4]

The environment, on both sides. TRL's multi-turn loop continues only while the model calls tools
(a turn without a tool call ends the episode), and an environment's public methods are its
tools; so the "try again" environment is written as a tool both frameworks can run:
``submit(answer)`` answers "Correct." or "That is not correct. Please try again. (N tries left)",
the episode ends at the right answer or after 3 submissions, and the reward is 0.5^(t-1) for the
submission t that was right (payoff's `try_again`), else 0. payoff runs it as a registered
`ToolEnv` (`[env] name = "submit_feedback"`), TRL as its ``environment_factory`` class with
``get_reward``. Both use the same ChatML template with tool support (TRL's Qwen2.5 template: the
SmolLM2 tokenizer shares its special tokens, and TRL only parses tool calls for templates it
knows), the same prompts, G, P, lengths, learning rate and loss (token mean, no KL).

Accuracy is measured the same way for both trained models: payoff's greedy episode player
(`payoff.models.episodes.play`) on the same held-out rows and environment.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROMPTS, GROUP, NEW_TOKENS, LR, TRIES, EVAL = 4, 8, 48, 1e-5, 3, 40
ROOT = Path(__file__).resolve().parent.parent


def rows(n: int, seed: int = 11) -> list[dict]:
    from payoff.tasks import arithmetic

    return arithmetic(n, seed=seed, level=1)


def right(answer: str, reference: str) -> bool:
    from payoff.core import Sample
    from payoff.registry import get_reward

    outcome = get_reward("math").score_one(Sample(completion=str(answer), reference=reference))
    return outcome.status == "ok" and (outcome.score or 0) >= 1.0


class SubmitTries:
    """TRL's side: the environment class (its public method `submit` is the tool)."""

    def reset(self, **row: Any) -> None:
        self.reference, self.attempts, self.solved_at = str(row["reference"]), 0, 0

    def submit(self, answer: str) -> str:
        """Submit a final answer to the question.

        Args:
            answer: The answer, a number.

        Returns:
            Whether it is correct.
        """
        if self.solved_at or self.attempts >= TRIES:
            return "No tries left."
        self.attempts += 1
        if right(answer, self.reference):
            self.solved_at = self.attempts
            return "Correct."
        left = TRIES - self.attempts
        return f"That is not correct. Please try again. ({left} {'try' if left == 1 else 'tries'} left)"

    def get_reward(self) -> float:
        return 0.5 ** (self.solved_at - 1) if self.solved_at else 0.0


def register_payoff_env() -> None:
    """payoff's side: the same tool as a `ToolEnv`, done at the right answer or the last try."""
    from payoff.core import Outcome, Sample, reward
    from payoff.envs import register_env
    from payoff.envs.base import Tool, ToolEnv

    @dataclass
    class SubmitEnv(ToolEnv):
        tries: SubmitTries | None = None

        def reset(self, row: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            self.tries = SubmitTries()
            self.tries.reset(**row)
            self.tools = [Tool("submit", "Submit a final answer to the question.",
                               {"type": "object", "properties": {"answer": {"type": "string", "description": "The answer, a number."}},
                                "required": ["answer"]}, self.tries.submit)]
            return super().reset(row)

        def step(self, message: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
            replies, done = super().step(message)
            assert self.tries is not None
            return replies, done or bool(self.tries.solved_at) or self.tries.attempts >= TRIES

    @reward(name="submit_tries")
    def submit_tries(sample: Sample) -> Outcome:
        """0.5^(t-1) for the submission t that was answered "Correct.", else 0."""
        results = [m.get("content") for m in sample.messages or [] if m.get("role") == "tool"]
        for attempt, text in enumerate([r for r in results if r != "No tries left."], start=1):
            if text == "Correct.":
                return Outcome.ok(0.5 ** (attempt - 1), {"solved_at": float(attempt)})
        return Outcome.ok(0.0, {"solved_at": 0.0})

    register_env("submit_feedback", SubmitEnv, None)
    return submit_tries


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
    """First-try and within-3 accuracy of greedy episodes on the held-out rows."""
    from payoff.models.episodes import Limits, env_factory, play
    from payoff.models.rollout import HFGenerator, SamplingParams

    generator = HFGenerator(model, tokenizer, 64)
    records, _ = play(generator, tokenizer, rows(EVAL, seed=99), env_factory("submit_feedback", {}), SamplingParams(NEW_TOKENS),
                      Limits(max_turns=TRIES + 1, max_tool_calls=TRIES + 1, max_tokens=1024), greedy=True)
    solved = [_solved(r) for r in records]
    return {"first_try": sum(s == 1 for s in solved) / len(solved), "within_3": sum(s > 0 for s in solved) / len(solved)}


def _solved(record: Any) -> int:
    results = [m.get("content") for m in record.messages if m.get("role") == "tool"]
    return next((k for k, text in enumerate(results, start=1) if text == "Correct."), 0)


def run_payoff(path: Path, steps: int, out: Path) -> tuple[list[float], dict[str, float]]:
    from payoff.models.default import load_policy
    from payoff.rl.config import TrainConfig
    from payoff.rl.loop import train

    submit_tries = register_payoff_env()
    times: list[float] = []
    model, tokenizer = load_policy(str(path))
    chatml_with_tools(tokenizer)
    config = TrainConfig.model_validate({
        "seed": 0, "steps": steps, "run_dir": str(out / "payoff"), "checkpoint_every": 0, "reward": "math",
        "model": {"name": str(path)}, "task": {"eval_size": 0},
        "env": {"name": "submit_feedback", "max_turns": TRIES + 1, "max_tool_calls": TRIES + 1, "max_tokens": 1024},
        "rollout": {"group_size": GROUP, "prompts_per_step": PROMPTS, "max_new_tokens": NEW_TOKENS, "batch_size": PROMPTS * GROUP},
        "algorithm": {"advantage": "grpo", "loss_aggregation": "token_mean"},
        "optim": {"lr": LR, "micro_batch": PROMPTS * GROUP}, "engine": {"workers": 0},
        "log": {"progress": False, "tensorboard": False, "plot": False, "samples_every": 0, "monitor": False}})
    train(config, model=model, tokenizer=tokenizer, reward=submit_tries, train_rows=rows(400), eval_rows=[],
          on_step=lambda row: times.append(row["time_step"]))
    return times, heldout(model, tokenizer)


def run_trl(path: Path, steps: int, out: Path) -> tuple[list[float], dict[str, float]]:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    register_payoff_env()  # for the held-out episodes
    times: list[float] = []

    class StepClock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.began = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter() - self.began)

    data = Dataset.from_list([{"prompt": [{"role": "user", "content": r["prompt"]}], "reference": r["reference"]} for r in rows(400)])
    tokenizer = chatml_with_tools(AutoTokenizer.from_pretrained(path))
    model = AutoModelForCausalLM.from_pretrained(path, dtype="float32")
    config = GRPOConfig(output_dir=str(out / "trl"), use_cpu=True, bf16=False, learning_rate=LR, max_steps=steps,
                        per_device_train_batch_size=PROMPTS * GROUP, gradient_accumulation_steps=1, num_generations=GROUP,
                        max_completion_length=NEW_TOKENS * (TRIES + 1), max_tool_calling_iterations=TRIES, temperature=1.0,
                        beta=0.0, loss_type="dapo", scale_rewards="group", num_iterations=1, steps_per_generation=1,
                        logging_steps=1, report_to="none", save_strategy="no", seed=0, dataloader_num_workers=0, disable_tqdm=True)
    trainer = GRPOTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer, environment_factory=SubmitTries,
                          callbacks=[StepClock()])
    trainer.train()
    return times, heldout(trainer.model, tokenizer)


def child(framework: str, kind: str, steps: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = model_dir(kind, Path(scratch))
        times, accuracy = (run_payoff if framework == "payoff" else run_trl)(path, steps, Path(scratch))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({"times": times, "peak_rss_mb": peak_mb, **accuracy}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="tiny,smollm2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--child", nargs=2, metavar=("FRAMEWORK", "MODEL"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.steps)
        return
    results: dict[tuple[str, str], list[dict]] = {}
    for kind in args.models.split(","):
        for repeat in range(args.repeats):
            for framework in ("payoff", "trl"):  # interleaved, so drift in machine speed hits both
                done = subprocess.run([sys.executable, __file__, "--child", framework, kind, "--steps", str(args.steps)],
                                      capture_output=True, text=True)
                line = next((row for row in done.stdout.splitlines() if row.startswith("RESULT ")), None)
                if line is None:
                    print(done.stdout[-2000:], done.stderr[-4000:], file=sys.stderr)
                    raise SystemExit(f"{framework} on {kind} failed")
                result = json.loads(line[7:])
                results.setdefault((kind, framework), []).append(result)
                print(f"{kind} {framework} repeat {repeat}: steps {[round(t, 2) for t in result['times']]} s, peak RSS "
                      f"{result['peak_rss_mb']:.0f} MB, first try {result['first_try']:.0%}, within 3 {result['within_3']:.0%}",
                      flush=True)
    print(f"\n{PROMPTS} prompts x {GROUP} episodes, up to {TRIES} submissions, {NEW_TOKENS} new tokens a turn, {args.steps} steps "
          f"(first excluded), medians of {args.repeats} runs; accuracy on {EVAL} held-out prompts, greedy\n")
    print("| model | payoff s/step | TRL s/step | ratio | payoff peak RSS MB | TRL peak RSS MB | payoff first/within 3 | TRL first/within 3 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind in args.models.split(","):
        med = lambda fw, key, kind=kind: statistics.median(r[key] for r in results[(kind, fw)])  # noqa: E731
        step = {fw: statistics.median(statistics.median(r["times"][1:] or r["times"]) for r in results[(kind, fw)])
                for fw in ("payoff", "trl")}
        print(f"| {kind} | {step['payoff']:.2f} | {step['trl']:.2f} | {step['payoff'] / step['trl']:.2f} | "
              f"{med('payoff', 'peak_rss_mb'):.0f} | {med('trl', 'peak_rss_mb'):.0f} | "
              f"{med('payoff', 'first_try'):.0%} / {med('payoff', 'within_3'):.0%} | {med('trl', 'first_try'):.0%} / {med('trl', 'within_3'):.0%} |")


if __name__ == "__main__":
    main()
