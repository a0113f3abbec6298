"""The grammar of docs/cli.md, checked on the Typer app itself (click introspection), and, where a
convention is behaviour (exit codes, stdout / stderr, the report folder), on real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
import typing
from collections import defaultdict
from pathlib import Path
from typing import Any

import typer

from payoff.cli import app, options

ROOT = Path(__file__).resolve().parents[2]
TREE = typer.main.get_command(app)
SHARED = {"--reward": options.REWARD, "--config": options.CONFIG, "--set": options.SET, "--workers": options.WORKERS,
          "--timeout-s": options.TIMEOUT_S, "--report": options.REPORT, "--gold": options.GOLD, "--resume": options.RESUME,
          "--env": options.ENV, "--env-set": options.ENV_SET}
SCORING = ("--reward", "--config", "--set", "--workers", "--timeout-s")


# Typer carries its own copy of click (typer._click): the tree is read by duck typing, and each
# parameter keeps the declaration it came from (`type_descriptor.parameter_info`).
def _is_group(command: Any) -> bool:
    return hasattr(command, "commands")


def _declared(param: Any) -> Any:
    return param.type_descriptor.parameter_info


def _is_path(param: Any) -> bool:
    annotation = param.type_descriptor.annotation
    return annotation is Path or Path in typing.get_args(annotation)


def _commands(group: Any = TREE, path: tuple[str, ...] = ()) -> dict[str, Any]:
    found = {}
    for name, command in group.commands.items():
        if _is_group(command):
            found.update(_commands(command, (*path, name)))
        else:
            found[" ".join((*path, name))] = command
    return found


COMMANDS = _commands()


def _options(command: Any) -> dict[str, Any]:
    return {param.opts[0]: param for param in command.params if param.param_type_name == "option" and param.opts[0] != "--help"}


def test_nouns_then_verbs() -> None:
    top = set(TREE.commands)  # type: ignore[attr-defined]
    groups = {name: command for name, command in TREE.commands.items() if _is_group(command)}  # type: ignore[attr-defined]
    assert set(groups) == {"rl", "rm", "prm", "dpo"}
    nouns_of = defaultdict(set)
    for noun, group in groups.items():
        assert group.commands and not any(_is_group(c) for c in group.commands.values())  # one level: noun verb
        for verb in group.commands:
            nouns_of[verb].add(noun)
    # A verb that several nouns share follows its noun everywhere and never stands alone.
    shared = {verb for verb, nouns in nouns_of.items() if len(nouns) > 1}
    assert shared == {"train"} and nouns_of["train"] == set(groups)
    assert top & set(nouns_of) == set()


def test_the_input_file_is_positional() -> None:
    readers = {}
    for name, command in COMMANDS.items():
        paths = [p for p in command.params if p.param_type_name == "argument" and _is_path(p)]
        assert len(paths) <= 1, name
        if paths:
            readers[name] = paths[0].name
        for option in _options(command).values():
            assert option.opts[0] not in ("--data", "--input", "--tasks", "--candidates", "--scored"), (name, option.opts)
            if _is_path(option) and _declared(option).exists:
                assert option.opts[0] == "--config", (name, option.opts)  # the one file an option names: a rubric
    assert set(COMMANDS) - set(readers) == {"serve", "rewards", "doctor", "prm bench", "prm champ"}  # they read no file
    assert {readers[t] for t in ("rl train", "rm train", "prm train", "dpo train")} == {"config"}


def test_shared_options_have_one_definition() -> None:
    seen = defaultdict(list)
    for name, command in COMMANDS.items():
        for flag, option in _options(command).items():
            if flag in SHARED:
                seen[flag].append(name)
                # Typer copies each declaration it reads: equal to the one in payoff.cli.options, field by field.
                assert vars(_declared(option)) == vars(SHARED[flag]), (name, flag)
    assert set(seen) == set(SHARED)
    assert seen["--report"] and all(len(seen[flag]) >= 2 for flag in SHARED)


def test_every_command_that_scores_takes_the_five_scoring_options() -> None:
    scoring = {name for name, command in COMMANDS.items() if "--reward" in _options(command)}
    assert scoring == {"score", "audit", "eval", "select", "serve", "rm sample", "prm label"}
    for name in scoring:
        assert set(SCORING) <= set(_options(COMMANDS[name])), name
    for name, command in COMMANDS.items():  # --workers / --timeout-s elsewhere: scoring too
        if {"--workers", "--timeout-s"} & set(_options(command)):
            assert {"--workers", "--timeout-s"} <= set(_options(command)), name
    trainers = {name for name, command in COMMANDS.items() if "--resume" in _options(command)}
    assert trainers == {"rl train", "rm train", "prm train", "dpo train"}
    assert all(set(_options(COMMANDS[t])) == {"--set", "--resume"} for t in trainers)  # the rest is in the config


def test_every_command_that_reports_takes_report() -> None:
    reporting = {name for name, command in COMMANDS.items() if "--report" in _options(command)}
    assert reporting == {"score", "audit", "monitor", "eval", "rescore", "select", "rm pairs", "prm label"}


def test_short_flags_and_long_names_mean_one_thing() -> None:
    meaning: dict[str, set[str]] = defaultdict(set)
    for name, command in COMMANDS.items():
        for option in _options(command).values():
            longs = [o for o in option.opts if o.startswith("--")]
            assert len(longs) == 1, (name, option.opts)  # no second name (an old one kept as an alias)
            for short in (o for o in option.opts if not o.startswith("--")):
                meaning[short].add(longs[0])
    assert {short: longs for short, longs in meaning.items() if len(longs) > 1} == {}


def test_every_command_and_option_says_what_it_is() -> None:
    for name, command in COMMANDS.items():
        assert (command.help or "").strip(), name
        for option in _options(command).values():
            assert (option.help or "").strip(), (name, option.opts)


def test_docs_cli_lists_every_command() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    assert [name for name in COMMANDS if f"`payoff {name}" not in text] == []


# -- behaviour: real subprocesses ------------------------------------------------------------------
def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "payoff", *args], capture_output=True, text=True, timeout=300)


def test_exit_codes_say_pass_or_fail(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in [{"prompt": "q", "chosen": "a longer answer", "rejected": "short"},
                                                             {"prompt": "q", "chosen": "x", "rejected": "much longer"}]))
    scorer = f"{ROOT / 'tests' / 'evaluate' / 'scorers.py'}:length"
    passed = _run("eval", "pairs", str(pairs), "--reward", scorer, "--fail-under", "0.5", "-w", "0", "--report", str(tmp_path / "r"))
    assert passed.returncode == 0, passed.stderr[-2000:]
    assert json.loads(passed.stdout)["overall"] == 0.5  # stdout: one JSON line; the table is on stderr
    assert "overall" in passed.stderr and {p.name for p in (tmp_path / "r").iterdir()} >= {"report.json", "report.md"}
    failed = _run("eval", "pairs", str(pairs), "--reward", scorer, "--fail-under", "0.6", "-w", "0")
    assert failed.returncode == 1 and "below --fail-under 0.6" in failed.stderr
    usage = _run("eval", "pairs", "--reward", scorer)  # no DATA
    assert usage.returncode == 2 and "needs DATA" in usage.stderr

    rollouts = tmp_path / "rollouts.jsonl"
    rows = [{"step": s, "completion": " ".join(f"w{k}" for k in range(5 + n * (1 + 3 * s))), "reward": (5 + n * (1 + 3 * s)) / 100}
            for s in range(3) for n in range(10)]
    rollouts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    quiet = _run("monitor", str(rollouts), "--unit", "words", "--report", str(tmp_path / "m"))
    assert quiet.returncode == 0 and json.loads(quiet.stdout)["warnings"]
    assert json.loads((tmp_path / "m" / "report.json").read_text())["steps"][2]["warnings"]
    assert "length_reward" in (tmp_path / "m" / "report.md").read_text()
    strict = _run("monitor", str(rollouts), "--unit", "words", "--fail-on-warning")
    assert strict.returncode == 1


def test_old_spellings_are_usage_errors(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps({"completion": "x"}) + "\n")
    for args in (("score", str(data), "--reward", "exact_match", "--timeout", "3"),  # --timeout-s only
                 ("audit", "--data", str(data), "--reward", "math"),  # the input is positional
                 ("train", "examples/demo.toml"),  # payoff rl train
                 ("dpo", "examples/dpo/dpo.toml"),  # payoff dpo train
                 ("rescore", str(data), "--reward", "math")):  # rescore compares --variant rewards
        done = _run(*args)
        assert done.returncode == 2, (args, done.stderr[-500:])
