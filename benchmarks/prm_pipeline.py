"""The PRM lifecycle measured end to end on one CPU machine, against baselines and chance.

1. Step problems with planted errors (`payoff prm bench`): train, eval.
2. Math-Shepherd labels from the embedded policy on part of the train problems: cost
   (prefixes, continuations, tokens, wall time) and agreement with the planted truth.
3. Two PRMs on the same trunk and budget: one trained on those automatic labels, one on the
   planted truth (what perfect labels would give).
4. ProcessBench F1 on the procedural eval set and on CHAMP's 540 human labels, for both PRMs
   (one forward pass per solution, every step's P(right) read at its end), the `math` verifier
   on every prefix (against the final answer, as `payoff eval processbench --reward math`), a
   per-step equation check (procedural set only: is each step's arithmetic right) and chance
   (a first-wrong index drawn uniformly from {-1, 0, ..., K-1}; the mean over 200 draws).
5. Best-of-N on the held-out arithmetic pools of the worked example: the PRM (min over steps)
   against majority vote and the oracle, through `payoff.select`.

    python benchmarks/prm_pipeline.py [--label-problems 48] [--rollouts 4] [--steps 60]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from payoff.evaluate.processbench import first_wrong_step, processbench_scores  # noqa: E402


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def train(folder: Path, train_file: Path, eval_file: Path, steps: int, seed: int = 0) -> dict:
    from payoff.prm.config import load_prm_config
    from payoff.prm.train import train_prm

    overrides = [f"run_dir='{folder}'", f"steps={steps}", f"seed={seed}", "checkpoint_every=0", f"data.train='{train_file}'",
                 f"data.eval='{eval_file}'", "optim.lr=2e-5", "optim.batch_size=8", "optim.micro_batch=8", "model.max_length=512",
                 "log.progress=false", "log.tensorboard=false", "log.plot=false"]
    return train_prm(load_prm_config(None, overrides))


def prm_f1(folder: Path, rows: list[dict], threshold: float = 0.5) -> dict:
    """ProcessBench F1 of a trained PRM: one forward pass per solution."""
    from payoff.prm.model import load_prm, score_steps
    from payoff.prm.steps import encode_steps

    model, tokenizer, settings = load_prm(folder)
    predictions = []
    for start in range(0, len(rows), 8):
        chunk = rows[start:start + 8]
        encoded = [encode_steps(tokenizer, r.get("prompt") or r["problem"], r.get("steps") or r["completions"],
                                settings.get("separator", "\n\n"), settings.get("chat_template", True), 1024) for r in chunk]
        scores = score_steps(model, [e[0] for e in encoded], [e[1] for e in encoded], int(tokenizer.pad_token_id), batch_size=8)
        for row, values in zip(chunk, scores):
            # a step cut off by max_length has no score: it counts as unscored (wrong), as in evaluation
            padded = list(values) + [None] * (len(row.get("steps") or row["completions"]) - len(values))
            predictions.append(first_wrong_step(padded, threshold))
    return _f1(rows, predictions)


def _f1(rows: list[dict], predictions: list[int]) -> dict:
    report = processbench_scores([{"label": r["label"], "prediction": p, "subset": r.get("subset")} for r, p in zip(rows, predictions)])
    return {"f1": report["overall"], "details": report["details"]}


def math_prefix_f1(rows: list[dict]) -> dict:
    from payoff.evaluate.runner import run_suite
    from payoff.registry import get_reward

    shaped = [{"prompt": r.get("prompt") or r["problem"], "steps": r.get("steps") or r["completions"], "label": r["label"],
               "reference": r.get("reference"), "subset": r.get("subset")} for r in rows]
    report = run_suite("processbench", shaped, get_reward("math"), workers=2)
    return {"f1": report["overall"], "details": report.get("details")}


def equation_f1(rows: list[dict]) -> dict:
    """Procedural set only: a step is right iff its "a op b = r" holds (carried values as written)."""
    pattern = re.compile(r"(-?\d+) ([+*-]) (-?\d+) = (-?\d+)")
    predictions = []
    for row in rows:
        verdicts = []
        for step in row["completions"]:
            found = pattern.search(step)
            if found:
                a, op, b, r = int(found[1]), found[2], int(found[3]), int(found[4])
                verdicts.append(float((a + b if op == "+" else a - b if op == "-" else a * b) == r))
            else:
                verdicts.append(1.0)  # the final "The answer is" line repeats the last result
        predictions.append(first_wrong_step(verdicts))
    return _f1(rows, predictions)


def chance_f1(rows: list[dict], draws: int = 200, seed: int = 0) -> dict:
    rng = random.Random(seed)
    values = []
    for _ in range(draws):
        scored = [{"label": r["label"], "prediction": rng.randrange(-1, len(r.get("steps") or r["completions"])),
                   "subset": r.get("subset")} for r in rows]
        values.append(processbench_scores(scored)["overall"])
    return {"f1": statistics.fmean(values)}


def best_of_n(prm_folder: Path, pools: Path, ns: list[int]) -> dict:
    from payoff.registry import get_reward
    from payoff.select.curves import scaling_curves
    from payoff.select.run import group_candidates, prepare
    from payoff.tasks.loader import read_table

    prompts = group_candidates(read_table(pools))
    for p in prompts:
        for c in p["candidates"]:
            c.pop("score", None)
    prepare(prompts, get_reward("prm").configure(path=str(prm_folder), aggregate="min"), get_reward("math"), workers=2)
    return scaling_curves(prompts, ["bon", "majority", "pass@k"], ns, draws=50, seed=0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="out/measure/prm_pipeline")
    parser.add_argument("--train-problems", type=int, default=200)
    parser.add_argument("--eval-problems", type=int, default=100)
    parser.add_argument("--label-problems", type=int, default=48)
    parser.add_argument("--rollouts", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--pools", default="out/rm_example/arith.eval.scored.jsonl")
    args = parser.parse_args()
    from payoff.prm.bench import step_problems
    from payoff.prm.champ import champ_rows
    from payoff.prm.label import agreement_with_truth, math_shepherd
    from payoff.registry import get_reward

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"settings": vars(args)}
    train_rows, eval_rows = step_problems(args.train_problems, seed=11), step_problems(args.eval_problems, seed=12)
    truth_file, eval_file = write(out / "truth.train.jsonl", train_rows), write(out / "eval.jsonl", eval_rows)

    started = time.perf_counter()
    labels_file = out / "ms.labels.jsonl"
    labels_file.unlink(missing_ok=True)
    labelled, cost = math_shepherd(train_rows[:args.label_problems], get_reward("math"), rollouts=args.rollouts,
                                   max_new_tokens=args.max_new_tokens, out=labels_file, batch_size=32)
    cost["wall_seconds"] = round(time.perf_counter() - started, 1)
    report["labelling"] = {**cost, **agreement_with_truth(labelled),
                           "mean_soft_label": statistics.fmean(v for r in labelled for v in r["labels"])}
    print("labelling:", report["labelling"], flush=True)

    report["train"] = {}
    for name, data in (("prm_math_shepherd", labels_file), ("prm_truth", truth_file)):
        summary = train(out / name, data, eval_file, args.steps)
        report["train"][name] = {k: summary.get(k) for k in ("step_accuracy_before", "step_accuracy_after", "f1_before", "f1_after",
                                                              "seconds_per_step", "wall_seconds")}
        print(name, report["train"][name], flush=True)

    champ, counts = champ_rows()
    report["champ_counts"] = counts
    report["f1"] = {"procedural": {}, "champ": {}}
    for where, rows in (("procedural", eval_rows), ("champ", champ)):
        for name in ("prm_math_shepherd", "prm_truth"):
            result = prm_f1(out / name, rows)
            report["f1"][where][name] = result["f1"]
            report.setdefault("f1_details", {}).setdefault(where, {})[name] = result["details"]
        report["f1"][where]["math_on_prefixes"] = math_prefix_f1(rows)["f1"]
        report["f1"][where]["chance"] = chance_f1(rows)["f1"]
        print(where, report["f1"][where], flush=True)
    report["f1"]["procedural"]["equation_check"] = equation_f1(eval_rows)["f1"]

    if Path(args.pools).exists():
        result = best_of_n(out / "prm_truth", Path(args.pools), [1, 2, 4, 8])
        report["best_of_n"] = {"pools": args.pools, "curves": result["curves"]}
        print("best-of-n (PRM trained on the planted truth, min over steps):", result["curves"], flush=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report["f1"]))


if __name__ == "__main__":
    main()
