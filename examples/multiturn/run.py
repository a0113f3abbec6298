"""The multi-turn worked example: SmolLM2-135M-Instruct on 1-20 addition, trained in the
`feedback` environment (3 tries) and, separately, with the `calculator` tool. Reports held-out
accuracy at the first try and within 3 tries, before and after, and draws the training curves.

    python examples/multiturn/run.py [--set steps=4 --set task.eval_size=20 ...] [--only feedback]

Each run is a plain `payoff rl train` of the config beside this file (the overrides apply to
both); the table goes to out/runs/multiturn/results.md and the curves to curves.png.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIGS = {"feedback": HERE / "feedback.toml", "calculator": HERE / "calculator.toml"}
CURVES = ("reward_mean", "episode/accuracy_first", "episode/accuracy_within_k", "episode/turns", "episode/tool_calls",
          "episode/tool_errors")


def run(name: str, overrides: list[str], out: Path) -> dict:
    run_dir = out / name
    command = [sys.executable, "-m", "payoff", "rl", "train", str(CONFIGS[name]), "--set", f"run_dir={run_dir}",
               "--set", "log.progress=false"]
    for item in overrides:
        command += ["--set", item]
    began = time.monotonic()
    subprocess.run(command, check=True)
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["wall_seconds"] = round(time.monotonic() - began, 1)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {"summary": summary, "rows": rows}


def table(results: dict[str, dict]) -> str:
    lines = ["| environment | steps | held-out | first try before | first try after | within 3 before | within 3 after | wall s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, result in results.items():
        s = result["summary"]
        pct = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
        lines.append(f"| {name} | {s['steps']} | {s['eval_size']} | {pct(s.get('accuracy_first_before'))} | "
                     f"{pct(s.get('accuracy_first_after'))} | {pct(s.get('accuracy_before'))} | {pct(s.get('accuracy_after'))} | "
                     f"{s['wall_seconds']} |")
    return "\n".join(lines) + "\n"


def plot(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 3, figsize=(13, 7))
    for axis, key in zip(axes.flat, CURVES):
        for name, result in results.items():
            steps = [r["step"] for r in result["rows"] if key in r]
            axis.plot(steps, [r[key] for r in result["rows"] if key in r], marker="o", label=name)
        axis.set_title(key)
        axis.set_xlabel("step")
        axis.legend()
    figure.suptitle("SmolLM2-135M, 1-20 addition: feedback (3 tries) and calculator")
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="a config override for both runs")
    parser.add_argument("--only", choices=sorted(CONFIGS), action="append", help="run only these environments")
    parser.add_argument("--out", default="out/runs/multiturn")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {name: run(name, args.overrides, out) for name in (args.only or list(CONFIGS))}
    text = table(results)
    (out / "results.md").write_text(text)
    plot(results, out / "curves.png")
    print(text)
    print(f"curves: {out / 'curves.png'}")


if __name__ == "__main__":
    main()
