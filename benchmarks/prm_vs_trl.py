"""payoff's PRM trainer against TRL's PRMTrainer, side by side, on one CPU machine.

TRL removed its PRMTrainer after 1.13.0 (huggingface/trl#7133); payoff pins TRL 1.16.0 for its
other benchmarks, so TRL 1.13.0 (the last with `trl.experimental.prm`) is installed with
``--no-deps`` into payoff's cache (``~/.cache/payoff/trl-1.13.0``) and put first on TRL's
child process's path. Same model (the embedded SmolLM2-135M-Instruct, full fine-tuning, each
tool's own head: payoff's scalar step head, TRL's 2-label token classifier), same step data (the
procedural benchmark: multi-step arithmetic with planted errors, TRL's PRM format), raw prompts,
"\\n" after each step, batch, learning rate, linear schedule, steps and max length. TRL runs at its
defaults (its PRMConfig turns gradient checkpointing and bf16 on) and at its best CPU setting
(both off: ``trl_best``); ``trl_bf16`` is bf16 without checkpointing, against ``payoff_bf16``
(``precision = "bf16"``), for a CPU whose bfloat16 products beat its float32 ones;
``trl_grouped`` adds Trainer's ``train_sampling_strategy = "group_by_length"`` (batches of
similar lengths pad less, but the batches are not the same solutions as payoff's). ``trl_bf16_eager``
is ``trl_bf16`` with TRL's model loaded with plain attention (``attn_implementation="eager"``),
which on short pairs can beat PyTorch's CPU flash attention. TRL 1.13's
PRMTrainer has no padding-free mode; both tools tokenise before the loop (0 data-loader workers:
on 2 cores a worker competes with the model). Every run is its own process (its own peak RSS).
Both are scored the same way: ProcessBench F1 on the held-out problems
(`payoff.evaluate.processbench`), a step counted wrong when P(right) < 0.5, TRL's step positions
taken from its own `tokenize_row`.

    python benchmarks/prm_vs_trl.py [--steps 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_runs import attention_of, medians, payoff_step_times, report_result, route_by_hand, run_child, steady, step_clock, tool_env  # noqa: E402

TRL_DIR = Path(os.environ.get("PAYOFF_CACHE", Path.home() / ".cache" / "payoff")) / "trl-1.13.0"


def data(folder: Path, train_n: int, eval_n: int) -> tuple[Path, Path]:
    from payoff.prm.bench import step_problems

    paths = []
    for name, n, seed in (("train", train_n, 11), ("eval", eval_n, 12)):
        path = folder / f"{name}.jsonl"
        rows = step_problems(n, seed=seed)
        path.write_text("".join(json.dumps({k: r[k] for k in ("prompt", "completions", "labels", "label")}) + "\n" for r in rows))
        paths.append(path)
    return paths[0], paths[1]


def run_payoff(args: argparse.Namespace, folder: Path, tool: str) -> dict:
    from payoff.prm.config import load_prm_config
    from payoff.prm.train import train_prm

    overrides = [f"data.train='{args.train}'", f"data.eval='{args.eval}'", f"steps={args.steps}", f"run_dir='{folder / 'payoff'}'",
                 "checkpoint_every=0", f"optim.lr={args.lr}", f"optim.batch_size={args.batch}", f"optim.micro_batch={args.batch}",
                 f"model.max_length={args.max_length}", "model.chat_template=false", "step.separator='\\n'",
                 "log.progress=false", "log.tensorboard=false", "log.plot=false", f"eval_batch_size={args.batch}",
                 f"precision='{PAYOFF_SETTINGS[tool]}'"]
    overrides += PAYOFF_OVERRIDES.get(tool, [])
    summary = train_prm(load_prm_config(None, overrides))
    return {"f1": summary["f1_after"], "step_accuracy": summary["step_accuracy_after"], "s_per_step": summary["seconds_per_step"],
            "s_median_step": steady(payoff_step_times(folder / "payoff"))}



PAYOFF_SETTINGS = {"payoff": "fp32", "payoff_mkl": "fp32", "payoff_bf16": "bf16", "payoff_bf16_1024": "bf16",  # the tool's `precision`
                   "payoff_bf16_sdpa": "bf16"}
# a setting's config beyond its precision: the RM trainer's bound per forward (docs/rm.md) against the PRM's 4096;
# transformers' attention (sdpa: the default before 2026-12-05, now "plain") with widths not rounded up (now to 16)
PAYOFF_OVERRIDES = {"payoff_bf16_1024": ["optim.micro_tokens=1024"],
                    "payoff_bf16_sdpa": ["model.attention='default'", "optim.pad_to_multiple_of=1"]}
TRL_SETTINGS = {"trl_defaults": {}, "trl_best": {"gradient_checkpointing": False, "bf16": False},
                "trl_onednn": {"gradient_checkpointing": False, "bf16": False},
                "trl_bf16": {"gradient_checkpointing": False, "bf16": True},
                "trl_bf16_eager": {"gradient_checkpointing": False, "bf16": True},
                "trl_grouped": {"gradient_checkpointing": False, "bf16": False, "train_sampling_strategy": "group_by_length"}}


def run_trl(args: argparse.Namespace, folder: Path, tool: str) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForTokenClassification, AutoTokenizer
    from trl.experimental.prm import PRMConfig, PRMTrainer

    from payoff.evaluate.processbench import first_wrong_step, processbench_scores
    from payoff.models.default import policy_path

    path = policy_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForTokenClassification.from_pretrained(path, num_labels=2, dtype=torch.float32, **attention_of(tool))
    model.config.pad_token_id = tokenizer.pad_token_id
    rows = [json.loads(line) for line in Path(args.train).read_text().splitlines()]
    train = Dataset.from_list([{k: r[k] for k in ("prompt", "completions", "labels")} for r in rows])
    options = dict(output_dir=str(folder / "trl"), max_steps=args.steps, per_device_train_batch_size=args.batch, learning_rate=args.lr,
                   max_length=args.max_length, step_separator="\n", lr_scheduler_type="linear", warmup_steps=0, report_to="none",
                   save_strategy="no", eval_strategy="no", logging_steps=10, use_cpu=True, dataloader_num_workers=0, seed=0)
    options.update(TRL_SETTINGS[tool])
    if tool == "trl_onednn":
        route_by_hand()
    trainer = PRMTrainer(model=model, args=PRMConfig(**options), train_dataset=train, processing_class=tokenizer)
    clock = step_clock()
    trainer.add_callback(clock)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    model.eval()
    scored, agree, total = [], 0, 0
    for line in Path(args.eval).read_text().splitlines():
        row = json.loads(line)
        encoded = PRMTrainer.tokenize_row(row, tokenizer, "\n", args.max_length, None, False, True)
        positions = [i for i, label in enumerate(encoded["labels"]) if label != -100]
        with torch.no_grad():
            logits = model(torch.tensor([encoded["input_ids"]])).logits[0].float()
        p_right = torch.softmax(logits[positions], -1)[:, 1].tolist()
        scores = p_right + [None] * (len(row["completions"]) - len(p_right))
        scored.append({"label": row["label"], "prediction": first_wrong_step(scores)})
        for value, label in zip(p_right, row["labels"]):
            agree += (value >= 0.5) == bool(label)
            total += 1
    return {"f1": processbench_scores(scored)["overall"], "step_accuracy": agree / max(total, 1),
            "s_per_step": round(seconds / args.steps, 4), "s_median_step": steady(clock.times), "bf16": trainer.args.bf16,
            "gradient_checkpointing": trainer.args.gradient_checkpointing}


def child(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        result = run_payoff(args, Path(folder), args.tool) if args.tool in PAYOFF_SETTINGS else run_trl(args, Path(folder), args.tool)
    report_result(result)


def ensure_trl() -> None:
    if not (TRL_DIR / "trl" / "experimental" / "prm").exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(TRL_DIR), "trl==1.13.0"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--train-n", type=int, default=200)
    parser.add_argument("--eval-n", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tools", default="payoff,trl_best,trl_defaults", help=f"of {', '.join([*PAYOFF_SETTINGS, *TRL_SETTINGS])}")
    parser.add_argument("--defaults-repeats", type=int, default=None, help="repeats of TRL at its defaults; default: --repeats")
    parser.add_argument("--defaults-timeout", type=float, default=None, help="seconds before a run of TRL at its defaults is left out")
    parser.add_argument("--tool", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--train", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--eval", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tool:
        child(args)
        return
    ensure_trl()
    work = Path(tempfile.mkdtemp(prefix="prm-bench-"))
    args.train, args.eval = (str(p) for p in data(work, args.train_n, args.eval_n))
    tools = [t for t in args.tools.split(",") if t]
    results: dict[str, list[dict]] = {tool: [] for tool in tools}
    for repeat in range(args.repeats):
        for tool in tools:  # interleaved, so drift on a noisy machine hits every tool alike
            if tool == "trl_defaults" and args.defaults_repeats is not None and repeat >= args.defaults_repeats:
                continue
            env = {**tool_env(tool), "TRL_EXPERIMENTAL_SILENCE": "1"}
            if tool not in PAYOFF_SETTINGS:
                env["PYTHONPATH"] = os.pathsep.join([str(TRL_DIR), env.get("PYTHONPATH", "")])
            command = [sys.executable, __file__, "--tool", tool, "--train", args.train, "--eval", args.eval, "--steps", str(args.steps),
                       "--batch", str(args.batch), "--max-length", str(args.max_length), "--lr", str(args.lr)]
            result = run_child(command, tool, env, timeout=args.defaults_timeout if tool == "trl_defaults" else None)
            if result is None:
                continue
            results[tool].append(result)
            print(f"repeat {repeat} {tool}: {results[tool][-1]}", file=sys.stderr, flush=True)
    table = medians(results, ("f1", "step_accuracy", "s_per_step", "s_median_step", "peak_rss_mb"))
    base = table.get("payoff")
    print(f"load average at the end {os.getloadavg()}")
    print(f"steps {args.steps}, batch {args.batch}, max_length {args.max_length}, lr {args.lr}, train {args.train_n}, eval {args.eval_n}")
    print(f"{'tool':<14}{'held-out F1':>12}{'step acc':>10}{'s/step':>9}{'median step':>13}{'peak RSS MB':>13}{'time ratio':>12}")
    for tool, row in table.items():
        ratio = row["s_per_step"] / base["s_per_step"] if base else float("nan")
        print(f"{tool:<14}{row['f1']:>12.3f}{row['step_accuracy']:>10.3f}{row['s_per_step']:>9.3f}{row['s_median_step']:>13.3f}"
              f"{row['peak_rss_mb']:>13.0f}{ratio:>12.2f}")
    print(json.dumps(table))


if __name__ == "__main__":
    main()
