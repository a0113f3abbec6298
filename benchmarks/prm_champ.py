"""ProcessBench F1 on CHAMP's human labels (and the procedural set's equation check) for PRMs
trained by benchmarks/prm_pipeline.py, the `math` verifier on every prefix, and chance.

A PRM reads a whole solution in one pass; CHAMP's solutions average ~450 tokens and 15 steps, so
on 2 CPU cores the PRMs are scored on the first --limit rows (the baselines on all of them).

    python benchmarks/prm_champ.py [--limit 64]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prm_pipeline import chance_f1, equation_f1, math_prefix_f1, prm_f1  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="out/measure/prm_pipeline")
    parser.add_argument("--limit", type=int, default=64)
    args = parser.parse_args()
    from payoff.prm.bench import step_problems
    from payoff.prm.champ import champ_rows

    out = Path(args.out)
    champ, counts = champ_rows()
    subset = champ[: args.limit]
    report = {"champ_counts": counts, "prm_rows": len(subset), "champ_all": {}, "champ_subset": {}}
    for name in ("prm_math_shepherd", "prm_truth"):
        report["champ_subset"][name] = prm_f1(out / name, subset)
        print(name, report["champ_subset"][name]["f1"], flush=True)
    for key, rows in (("champ_subset", subset), ("champ_all", champ)):
        report[key]["math_on_prefixes"] = math_prefix_f1(rows)
        report[key]["chance"] = chance_f1(rows)
    report["procedural_equation_check"] = equation_f1(step_problems(100, seed=12))
    (out / "champ.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: {n: v["f1"] for n, v in report[k].items()} for k in ("champ_subset", "champ_all")}))
    print("equation check (procedural):", report["procedural_equation_check"]["f1"])


if __name__ == "__main__":
    main()
