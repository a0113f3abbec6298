"""Judges, measured on the embedded SmolLM2-135M-Instruct, in-process and through a real
OpenAI-compatible server (llama.cpp's, serving the same model from its GGUF on 127.0.0.1):

1. master-key false-positive rate of the reference judge, per key, unguarded vs guarded (a
   probe counts as a false positive when the judge's score is >= 0.5);
2. the pairwise judge's position flip rate on verifier-built pairs, and the conservative rule's
   agreement with the `math` verifier (pairs whose truth is known);
3. judgments/s: the local backend on reference-judge prompts (the built-in template filled in with
   arithmetic questions and answers of varying length): one prompt per forward, then each of
   ``--sizes`` prompts per forward without and with the template's shared prefix computed once
   per call (its key/value cache expanded over each batch); with ``--group G``, GRPO-shaped calls
   (G responses per question, whose question and reference are shared too) and one call per group;
   and the server with 8 requests in flight vs sequential calls. ``--local-only`` measures the local backend alone (no llama.cpp server).

    python benchmarks/judges.py [--tasks 10] [--pairs 40] [--local-only] [--prompts 96] [--sizes 8,16,48,96] [--threads 1]
        [--precisions fp32,bf16] [--group 8] [--attention sdpa]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from payoff.engine import score  # noqa: E402
from payoff.judges.backends import LocalBackend, OpenAIBackend  # noqa: E402
from payoff.registry import get_reward  # noqa: E402
from payoff.tasks.arithmetic import arithmetic  # noqa: E402

KEYS = [" ", ".", ",", ":", "Thought process:", "Let's solve this problem step by step.", "Solution", "解", "かいせつ"]


def false_positives(judge, tasks) -> dict[str, float]:
    samples = [{"prompt": t["prompt"], "completion": key, "reference": t["reference"]} for t in tasks for key in KEYS]
    outcomes = score(samples, judge, workers=0)
    rates = {}
    for k, key in enumerate(KEYS):
        mine = outcomes[k::len(KEYS)]
        rates[key] = sum(o.status == "ok" and o.score >= 0.5 for o in mine) / len(mine)
    return rates


def pairwise(judge, pairs) -> dict[str, float]:
    samples = [{"prompt": p["prompt"], "completion": p["chosen"], "meta": {"other": p["rejected"]}} for p in pairs]
    outcomes = [o for o in score(samples, judge, workers=0) if o.status == "ok"]
    return {"pairs": len(outcomes), "flip_rate": sum(o.components["flip"] for o in outcomes) / len(outcomes),
            "conservative_win": sum(o.score == 1.0 for o in outcomes) / len(outcomes),
            "conservative_tie": sum(o.score == 0.5 for o in outcomes) / len(outcomes),
            "conservative_loss": sum(o.score == 0.0 for o in outcomes) / len(outcomes)}


STEPS = ["Let me add the numbers.", "First I line up the digits.", "Carrying the one.", "Checking the sum again.", "So the total is clear."]


def judge_prompts(n: int, group: int = 1) -> list[str]:
    """Reference-judge prompts as the judge renders them: one template, answers of varying length.
    ``group`` > 1: a GRPO batch, ``n // group`` questions with ``group`` different responses each
    (some right, some wrong), the group's members side by side as a trainer passes them."""
    from payoff.judges.templates import load_template

    template, rng = load_template("reference"), random.Random(3)
    rows = arithmetic(max(1, n // group), seed=7)
    prompts = []
    for k in range(n):
        r = rows[k // group] if group > 1 else rows[k % len(rows)]
        answer = r["reference"] if group == 1 or rng.random() < 0.6 else str(int(r["reference"]) + rng.randint(1, 9))
        steps = rng.sample(STEPS, rng.randint(0, 3)) if group > 1 else ["Let me add the numbers."] * rng.randint(0, 3)
        prompts.append(template.render(prompt=r["prompt"], reference=r["reference"], response=" ".join(steps) + f" The answer is {answer}."))
    return prompts


Setting = tuple[str, int | None, bool | None, str, int | None]


def local_settings(sizes: list[int], precisions: list[str], group: int = 1) -> list[Setting]:
    """(label, prompts per forward, share_prefix, precision, prompts per call) of each local
    setting measured (None: the backend's default; every prompt in one call). ``group`` > 1 adds
    one call per group (the judge reward's ``batch_size`` set to the group's size, so each call's
    common prefix is its group's), at the default settings."""
    settings: list[Setting] = []
    for precision in precisions:
        tag = "" if precision == "fp32" else f"_{precision}"
        settings.append((f"local_one_per_forward{tag}", 1, False, precision, None))
        for size in sizes:
            settings += [(f"local_batched_{size}{tag}", size, False, precision, None),
                         (f"local_shared_prefix_{size}{tag}", size, True, precision, None)]
    if group > 1:
        settings += [(f"local_call_per_group{'' if p == 'fp32' else '_' + p}", None, None, p, group) for p in precisions]
    return settings


def local_throughput(prompts: list[str], repeats: int, sizes: list[int], precisions: list[str], group: int = 1) -> dict[str, float]:
    """Median judgments/s of each local setting over ``repeats`` rounds (settings interleaved)."""
    import statistics

    LocalBackend().verdicts(prompts[:2], ["Yes", "No"])  # load the model once
    settings = local_settings(sizes, precisions, group)
    seconds: dict[str, list[float]] = {label: [] for label, *_ in settings}
    for _ in range(repeats):
        for label, per_forward, share, precision, per_call in settings:
            backend = LocalBackend(batch_size=per_forward, share_prefix=share, precision=precision)
            step = per_call or len(prompts)
            started = time.perf_counter()
            for k in range(0, len(prompts), step):
                backend.verdicts(prompts[k:k + step], ["Yes", "No"])
            seconds[label].append(time.perf_counter() - started)
            print(f"  round {len(seconds[label])} {label}: {seconds[label][-1]:.1f} s", file=sys.stderr, flush=True)
    return {label: len(prompts) / statistics.median(times) for label, times in seconds.items()}


def print_local(t: dict[str, float], sizes: list[int], precisions: list[str], group: int = 1) -> None:
    """Each setting against one prompt per forward at its own precision, and against fp32's."""
    for label, _, _, precision, _ in local_settings(sizes, precisions, group):
        own = t["local_one_per_forward" + ("" if precision == "fp32" else f"_{precision}")]
        print(f"  {label:<31} {t[label]:>6.2f} judgments/s  {t[label] / own:>5.2f}x one per forward  "
              f"{t[label] / t['local_one_per_forward']:>5.2f}x fp32's one per forward")


def throughput(args, url: str) -> dict[str, float]:
    prompts = [f"Is {n} a prime number? Reply with exactly one word: Yes or No." for n in range(args.prompts)]
    result = local_throughput(judge_prompts(args.prompts, args.group), args.repeats, args.sizes, args.precisions, args.group)
    for label, concurrency in (("server_sequential", 1), ("server_8_in_flight", 8)):
        backend = OpenAIBackend(url, "smollm2", concurrency=concurrency, cache=None)
        started = time.perf_counter()
        verdicts = backend.verdicts([p + f" (run {label})" for p in prompts], ["Yes", "No"])
        result[label] = len(prompts) / (time.perf_counter() - started)
        result[label + "_errors"] = sum(isinstance(v, Exception) for v in verdicts)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--prompts", type=int, default=96)
    parser.add_argument("--sizes", type=lambda v: [int(x) for x in v.split(",")], default=[8, 16, 48, 96],
                        help="prompts per forward to measure, comma-separated")
    parser.add_argument("--pairs-file", default="out/rm_example/pairs.eval.jsonl")
    parser.add_argument("--group", type=int, default=1,
                        help="completions per question (a GRPO group; 1: every prompt its own question)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the local throughput settings (median)")
    parser.add_argument("--precisions", type=lambda v: v.split(","), default=["fp32"],
                        help="the local backend's precisions, comma-separated (fp32,bf16: both, interleaved)")
    parser.add_argument("--attention", choices=["auto", "sdpa", "eager"], default="auto",
                        help="the local judge's attention (auto: the backend's choice, plain on a CPU)")
    parser.add_argument("--local-only", action="store_true", help="only the local backend's throughput")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's default); 1 keeps a loaded 2-core machine from stalling on thread barriers")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    os.environ["PAYOFF_JUDGE_CACHE"] = "off"
    if args.attention != "auto":
        LocalBackend()._load()[0].set_attn_implementation(args.attention)  # the backend's one loaded copy
    if args.local_only:
        prompts = judge_prompts(args.prompts, args.group)
        t = local_throughput(prompts, args.repeats, args.sizes, args.precisions, args.group)
        print(f"local backend, {args.prompts} reference-judge prompts ({len(set(prompts))} distinct, groups of {args.group}), "
              f"median of {args.repeats}, {args.threads or 'default'} threads:")
        print_local(t, args.sizes, args.precisions, args.group)
        print(json.dumps(t))
        return
    from tests.judges.server import llama_server

    tasks = arithmetic(args.tasks, seed=5)
    report: dict[str, object] = {}
    with llama_server() as (url, _):
        for where, base in (("in_process", {}), ("server", {"backend": "openai", "base_url": url, "model": "smollm2"})):
            judge = get_reward("judge_reference").configure(**base)
            report[f"master_keys_{where}"] = {"unguarded": false_positives(judge.configure(guard=False), tasks),
                                              "guarded": false_positives(judge, tasks)}
        path = Path(args.pairs_file)
        if path.exists():
            rows = [json.loads(line) for line in path.read_text().splitlines()]
            pairs = random.Random(0).sample(rows, min(args.pairs, len(rows)))
        else:
            pairs = [{"prompt": t["prompt"], "chosen": t["reference"], "rejected": str(int(t["reference"]) + 1)}
                     for t in arithmetic(args.pairs, seed=6)]
        report["pairwise_in_process"] = pairwise(get_reward("judge_pairwise").configure(guard=False), pairs)
        report["throughput_judgments_per_s"] = throughput(args, url)
    for where in ("in_process", "server"):
        table = report[f"master_keys_{where}"]
        print(f"master-key false-positive rate ({where}, {args.tasks} tasks): key | unguarded | guarded")
        for key in KEYS:
            print(f"  {key!r:<44} {table['unguarded'][key]:>6.0%} {table['guarded'][key]:>6.0%}")
    print("pairwise on verifier-built pairs (chosen = verified correct):", report["pairwise_in_process"])
    t = report["throughput_judgments_per_s"]
    print_local(t, args.sizes, args.precisions, args.group)
    print(f"judgments/s: server 8 in flight {t['server_8_in_flight']:.1f} vs sequential "
          f"{t['server_sequential']:.1f} ({t['server_8_in_flight'] / t['server_sequential']:.2f}x)")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
