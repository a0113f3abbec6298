"""Real files for the viewer to show, made the way a user makes them: a `payoff rl train` run on the
tiny random Llama (tests/rl/toy.py), `payoff score` over episodes with tool calls, `payoff rescore`,
`payoff audit` and `payoff eval` reports (subprocesses), and an audit hack matrix in the schema the
audit writes to DIR/matrix.json.

``python -m tests.view.fixtures DIR`` builds them all in DIR (docs/view.md's screenshots use it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOYS = Path(__file__).resolve().parent / "toy_rewards.py"


def payoff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "payoff", *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def make_run(folder: Path, steps: int = 4) -> Path:
    """A real RL run: GRPO on the tiny model against `view_vowels`, every sample of every step logged."""
    from payoff.registry import get_reward
    from payoff.rl.config import TrainConfig
    from payoff.rl.loop import train
    from tests.rl.toy import tiny_model, tokenizer

    config = TrainConfig.model_validate({
        "seed": 0, "steps": steps, "run_dir": str(folder), "checkpoint_every": 0, "model": {"chat_template": False},
        "rollout": {"group_size": 4, "prompts_per_step": 4, "max_new_tokens": 12, "batch_size": 16},
        "optim": {"lr": 5e-2}, "engine": {"workers": 0}, "eval": {"threshold": 0.3},
        "log": {"progress": False, "tensorboard": False, "plot": False, "samples_every": 1, "samples_shown": 16, "monitor_unit": "chars"}})
    rows = [{"prompt": f"Write a word number {i}.", "reference": None} for i in range(32)]
    train(config, model=tiny_model(), tokenizer=tokenizer(), reward=get_reward(f"{TOYS}:vowels"), train_rows=rows, eval_rows=rows[:4])
    return folder


def episode(question: str, expression: str, result: str, final: str, feedback: bool = True) -> dict:
    messages = [{"role": "system", "content": "Use the calculator tool."}, {"role": "user", "content": question},
                {"role": "assistant", "content": "Let me compute that.",
                 "tool_calls": [{"id": "call_1", "type": "function",
                                 "function": {"name": "calculator", "arguments": json.dumps({"expression": expression})}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": result}]
    if feedback:
        messages += [{"role": "user", "content": "Give the final answer in one sentence."}]
    messages += [{"role": "assistant", "content": final}]
    return {"prompt": question, "messages": messages, "reference": result, "group": question}


def make_episodes(folder: Path) -> Path:
    """`payoff score` over tool-using episodes: its scored JSONL (rows keep their messages)."""
    rows = [episode("What is 17 * 23?", "17 * 23", "391", "17 * 23 = 391."),
            episode("What is 17 * 23?", "17 + 23", "40", "The answer is 40.", feedback=False),
            episode("What is 12 squared?", "12 ** 2", "144", "12 squared is 144."),
            episode("What is 12 squared?", "12 * 2", "24", "It is 144, I think.")]
    data = write_jsonl(folder / "episodes.jsonl", rows)
    done = payoff("score", str(data), "--reward", f"{TOYS}:tool_use", "-w", "0", "--out", str(folder / "episodes.scored.jsonl"))
    assert done.returncode == 0, done.stderr[-2000:]
    return folder / "episodes.scored.jsonl"


def make_rescore(run: Path) -> Path:
    done = payoff("rescore", str(run / "samples.jsonl"), "--variant", f"{TOYS}:length_share", "-w", "0", "--examples", "20",
                  "--threshold", "0.25", "--report", str(run / "rescore"))
    assert done.returncode == 0, done.stderr[-2000:]
    return run / "rescore"


def make_audit(folder: Path) -> Path:
    tasks = write_jsonl(folder / "tasks.jsonl", [{"prompt": f"What is {a} + {b}?", "reference": str(a + b)} for a, b in [(2, 3), (10, 32), (7, 8)]])
    done = payoff("audit", str(tasks), "--reward", f"{TOYS}:length_share", "-w", "0", "--report", str(folder / "audit"))
    assert done.returncode in (0, 1), done.stderr[-2000:]  # 1: the verdict is FAIL (a length reward should fail)
    cells = []
    for reward in ("math", "length_share"):
        for hack, kind, exploits in (("answer_spam", "exploit", 0 if reward == "math" else 3), ("long_padding", "exploit", 3 * (reward != "math")),
                                     ("tool_result_echo", "episode", None)):
            if exploits is None:
                cells.append({"hack": hack, "kind": kind, "reward": reward, "probes": 0, "exploits": 0, "rate": None, "status": "n/a",
                              "why": "no episode tasks", "example": None})
                continue
            example = None if not exploits else {"prompt": "What is 2 + 3?", "completion": "5 " * 40 if hack == "long_padding" else "1 2 3 4 5 6",
                                                 "score": 1.0}
            cells.append({"hack": hack, "kind": kind, "reward": reward, "probes": 3, "exploits": exploits, "rate": exploits / 3,
                          "status": "fail" if exploits else "pass", "why": f"{exploits} of 3 probes credited", "example": example})
    (folder / "audit" / "matrix.json").write_text(json.dumps({"cells": cells, "false_negatives": {
        "math": {"n": 6, "missed": 0, "rate": 0.0}, "length_share": {"n": 6, "missed": 2, "rate": 1 / 3}}}))
    return folder / "audit"


def make_evals(folder: Path) -> Path:
    pairs = write_jsonl(folder / "pairs.jsonl", [
        {"prompt": "Say something kind.", "chosen": "You did a wonderful job today.", "rejected": "ok", "subset": "chat"},
        {"prompt": "Say something kind.", "chosen": "Nice.", "rejected": "I would rather not say anything at all to you.", "subset": "chat"},
        {"prompt": "2 + 2?", "chosen": "4", "rejected": "It is definitely five, trust me.", "subset": "math"},
        {"prompt": "3 + 5?", "chosen": "The sum of three and five is eight.", "rejected": "9", "subset": "math"}])
    for name, spec in (("length", f"{ROOT / 'tests' / 'evaluate' / 'scorers.py'}:length"), ("vowels", f"{TOYS}:vowels")):
        done = payoff("eval", "pairs", str(pairs), "--reward", spec, "-w", "0", "--report", str(folder / "evals" / name))
        assert done.returncode == 0, done.stderr[-2000:]
    return folder / "evals"


def build_all(root: Path) -> dict[str, Path]:
    run = make_run(root / "run")
    make_episodes(root), make_rescore(run), make_audit(root), make_evals(root)
    return paths(root)


def paths(root: Path) -> dict[str, Path]:
    return {"run": root / "run", "episodes": root / "episodes.scored.jsonl", "rescore": root / "run" / "rescore",
            "audit": root / "audit", "evals": root / "evals"}


if __name__ == "__main__":
    for kind, path in build_all(Path(sys.argv[1])).items():
        print(kind, path)
