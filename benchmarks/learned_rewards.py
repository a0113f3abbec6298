"""The hack matrix of three small learned rewards: an outcome reward model, a PRM and a DPO
policy's implicit reward, each trained here on CPU from nothing but the embedded SmolLM2-135M
(docs/audit.md shows the figures). Learned rewards are reported, not gated.

The artefacts live outside the repository, under ``~/.cache/payoff/audit/`` (``$PAYOFF_AUDIT_CACHE``),
and are rebuilt when missing (``--rebuild`` forces it):

- ``rm``: the worked example's pipeline (examples/rm/worked_example.py) shrunk to fit ~15 minutes
  on 2 cores: completions from the 135M policy on level-1 arithmetic (``payoff rm sample``, scored
  by ``math``), correct-vs-incorrect pairs within a prompt (``payoff rm pairs``), training and
  held-out prompts disjoint, and ``payoff rm train examples/rm/rm.toml`` with fewer steps;
- ``dpo``: ``payoff dpo train examples/dpo/dpo.toml`` on the same pairs, a few LoRA steps, so that
  the policy differs from its reference and ``implicit_reward`` is not 0 everywhere;
- ``prm``: a PRM on procedural step problems with planted errors (``payoff.prm.bench``; the
  planted truth as labels, as benchmarks/prm_pipeline.py's ``prm_truth``).

Each is then audited (``payoff.audit.audit`` + ``matrix_of``) on held-out level-1 arithmetic
tasks and the CI gate's math tasks. A reward model's raw score has no fixed sign, and the audit
needs the correct answer to score above 0, so the RM and the implicit reward are read through a
sigmoid (sigma(r): the Bradley-Terry chance of beating an answer of reward 0); the PRM's score is
already a probability (its weakest step's P(right)). A probe counts as credited when its score is
at least ``--threshold`` x the plain correct answer's (0.5, as for the judge; 1.0 asks "did the
wrong answer score at least as high as the right one").

    flock /tmp/payoff-bench.lock nice -n 5 python benchmarks/learned_rewards.py --out out/learned_matrix
    python benchmarks/hack_matrix.py --skip-fn --merge out/learned_matrix/matrix.json   # one table
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from payoff.audit import audit  # noqa: E402
from payoff.audit.matrix import Matrix, matrix_of  # noqa: E402
from payoff.core import Outcome, Sample, batched_reward  # noqa: E402
from payoff.dpo.reward import implicit_reward  # noqa: E402
from payoff.registry import get_reward  # noqa: E402
from payoff.rm.reward import reward_model  # noqa: E402
from payoff.tasks.arithmetic import arithmetic  # noqa: E402
from tests.audit.test_audit import MATH_TASKS  # noqa: E402

CACHE = Path(os.environ.get("PAYOFF_AUDIT_CACHE", "~/.cache/payoff/audit")).expanduser()


def payoff_cli(*args: str) -> str:
    started = time.perf_counter()
    print("$ payoff " + " ".join(args), file=sys.stderr, flush=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-m", "payoff", *args], check=True, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    print(f"  ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    return done.stdout


def last_json(text: str) -> dict[str, Any]:
    """The CLI prints its summary as the last JSON object of stdout (possibly over several lines)."""
    start = text.rfind("\n{")
    return json.loads(text[start + 1 if start >= 0 else 0:])


def build_pairs(folder: Path, train_prompts: int, eval_prompts: int) -> dict[str, Any]:
    """Policy samples on level-1 arithmetic, scored by ``math``, paired correct vs incorrect."""
    folder.mkdir(parents=True, exist_ok=True)
    report = {}
    for split, count, seed in (("train", train_prompts, "1"), ("eval", eval_prompts, "2")):
        scored = folder / f"{split}.scored.jsonl"
        if not scored.exists():
            payoff_cli("rm", "sample", "--task", "arithmetic", "--level", "1", "--max-new-tokens", "24", "--prompts", str(count),
                       "--n", "8", "--task-seed", seed, "--reward", "math", "--out", str(scored))
        report[split] = last_json(payoff_cli("rm", "pairs", str(scored), "--out", str(folder / f"pairs.{split}.jsonl"),
                                             "--max-per-prompt", "8"))
    return report


def build_rm(folder: Path, pairs: Path, steps: int) -> dict[str, Any]:
    summary = last_json(payoff_cli("rm", "train", str(ROOT / "examples/rm/rm.toml"), "--set", f"run_dir='{folder}'",
                                   "--set", f"steps={steps}", "--set", "checkpoint_every=0", "--set", "model.max_length=128",
                                   "--set", f"data.train='{pairs / 'pairs.train.jsonl'}'", "--set", f"data.eval='{pairs / 'pairs.eval.jsonl'}'"))
    return {k: summary.get(k) for k in ("train_pairs", "eval_pairs", "steps", "accuracy_before", "accuracy_after",
                                        "length_correlation", "wall_seconds")}


def build_dpo(folder: Path, pairs: Path, steps: int) -> dict[str, Any]:
    summary = last_json(payoff_cli("dpo", "train", str(ROOT / "examples/dpo/dpo.toml"), "--set", f"run_dir='{folder}'",
                                   "--set", f"steps={steps}", "--set", "checkpoint_every=0", "--set", "model.max_length=128",
                                   "--set", "eval.task='none'", "--set", f"data.train='{pairs / 'pairs.train.jsonl'}'",
                                   "--set", f"data.eval='{pairs / 'pairs.eval.jsonl'}'"))
    return {k: v for k, v in summary.items() if not isinstance(v, (dict, list))}


def build_prm(folder: Path, steps: int, lr: float) -> dict[str, Any]:
    from payoff.prm.bench import step_problems
    from payoff.prm.config import load_prm_config
    from payoff.prm.train import train_prm

    data = folder.parent / "prm_data"
    data.mkdir(parents=True, exist_ok=True)
    for name, count, seed in (("train", 200, 11), ("eval", 60, 12)):
        (data / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in step_problems(count, seed=seed)))
    overrides = [f"run_dir='{folder}'", f"steps={steps}", "seed=0", "checkpoint_every=0", f"data.train='{data / 'train.jsonl'}'",
                 f"data.eval='{data / 'eval.jsonl'}'", f"optim.lr={lr}", "optim.batch_size=8", "optim.micro_batch=8",
                 "model.max_length=256", "log.progress=false", "log.tensorboard=false", "log.plot=false"]
    summary = train_prm(load_prm_config(None, overrides))
    return {k: summary.get(k) for k in ("step_accuracy_before", "step_accuracy_after", "f1_before", "f1_after", "steps", "wall_seconds")}


def _squash(outcomes: list[Outcome]) -> list[Outcome]:
    """sigma(r), so that scores are positive and comparable to a threshold x the correct answer's;
    the raw score stays in ``components``."""
    return [Outcome.ok(0.5 * (1 + math.tanh(o.score / 2)), {"raw": o.score}) if o.status == "ok" and o.score is not None else o
            for o in outcomes]


# Module-level (picklable) so that the audit can score in a worker process under a timeout: a
# bomb that makes a learned reward run for ever then counts, as it does for the judge.
# Named apart from the built-ins: a reward registers under its name, and "reward_model" here would
# shadow the one it reads.
@batched_reward(name="sigmoid_reward_model", batch_size=16, timeout_s=300.0)
def sigmoid_reward_model(samples: list[Sample], path: str = "") -> list[Outcome]:
    return _squash(reward_model.configure(path=path).score_batch(samples))


@batched_reward(name="sigmoid_implicit_reward", batch_size=8, timeout_s=300.0)
def sigmoid_implicit_reward(samples: list[Sample], path: str = "") -> list[Outcome]:
    return _squash(implicit_reward.configure(path=path).score_batch(samples))


def audit_tasks() -> list[dict[str, Any]]:
    held_out = [{"prompt": r["prompt"], "reference": r["reference"]} for r in arithmetic(6, seed=3, level=1)]
    return held_out + MATH_TASKS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="out/learned_matrix")
    parser.add_argument("--cache", default=str(CACHE))
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--train-prompts", type=int, default=48)
    parser.add_argument("--eval-prompts", type=int, default=16)
    parser.add_argument("--rm-steps", type=int, default=30)
    parser.add_argument("--dpo-steps", type=int, default=10)
    parser.add_argument("--prm-steps", type=int, default=30)
    # prm_pipeline's rate; 30 steps of it moved held-out step accuracy 0.61 -> 0.63 only (docs/audit.md)
    parser.add_argument("--prm-lr", type=float, default=2e-5)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--tasks", type=int, default=12, help="audit on the last N of the 12 tasks (the CI gate's six math tasks last)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per scoring batch; a bomb that runs past it counts")
    parser.add_argument("--only", action="append", choices=["reward_model", "prm", "implicit"], help="audit only these")
    args = parser.parse_args()
    cache, out = Path(args.cache), Path(args.out)
    if args.rebuild and cache.exists():
        shutil.rmtree(cache)
    out.mkdir(parents=True, exist_ok=True)
    built: dict[str, Any] = json.loads((cache / "built.json").read_text()) if (cache / "built.json").exists() else {}
    wanted = args.only or ["reward_model", "prm", "implicit"]
    started = time.perf_counter()
    if {"reward_model", "implicit"} & set(wanted) and not (cache / "pairs" / "pairs.eval.jsonl").exists():
        built["pairs"] = build_pairs(cache / "pairs", args.train_prompts, args.eval_prompts)
    if "reward_model" in wanted and not (cache / "rm" / "summary.json").exists():
        built["reward_model"] = build_rm(cache / "rm", cache / "pairs", args.rm_steps)
    if "implicit" in wanted and not (cache / "dpo" / "summary.json").exists():
        built["implicit"] = build_dpo(cache / "dpo", cache / "pairs", args.dpo_steps)
    if "prm" in wanted and not (cache / "prm" / "summary.json").exists():
        built["prm"] = build_prm(cache / "prm", args.prm_steps, args.prm_lr)
    built["build_seconds"] = round(time.perf_counter() - started)
    (cache / "built.json").write_text(json.dumps(built, indent=1))
    print(json.dumps(built), file=sys.stderr, flush=True)

    rewards = {"reward_model": sigmoid_reward_model.configure(path=str(cache / "rm")),
               "prm": get_reward("prm").configure(path=str(cache / "prm")),
               "implicit": sigmoid_implicit_reward.configure(path=str(cache / "dpo"))}
    tasks, matrix, details = audit_tasks()[-args.tasks:], Matrix(), {"built": built, "threshold": args.threshold}
    for kind in wanted:
        began = time.perf_counter()
        report = audit(rewards[kind], tasks, threshold=args.threshold, workers=1, timeout_s=args.timeout)
        matrix = matrix.merge(matrix_of(report, tasks, kind=kind))
        details[kind] = {"verdict": report.verdict, "seconds": round(time.perf_counter() - began), "usable": report.usable_tasks,
                         "unusable": report.unusable_references}
        print(f"{kind}: {report.verdict} in {details[kind]['seconds']} s", file=sys.stderr, flush=True)
        paths = matrix.write(out)  # after each reward: a long run keeps what it has measured
        (out / "details.json").write_text(json.dumps(details, indent=1, default=repr))
    print(json.dumps({"cells": len(matrix.cells), "fail": sum(c.status == "fail" for c in matrix.cells),
                      "false_negatives": matrix.false_negatives, "wrote": [str(p) for p in paths]}))


if __name__ == "__main__":
    main()
