"""The `payoff` application: one Typer app, one module per command family."""

from __future__ import annotations

import typer

from payoff.cli import audit, evaluate, info, prm, rm, score, select, serve, train

app = typer.Typer(
    name="payoff",
    help="Rewards for RL post-training: define, compose, verify, audit, serve and use them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("score")(score.score_command)
app.command("rewards")(info.rewards_command)
app.command("doctor")(info.doctor_command)
app.command("audit")(audit.audit_command)
app.command("monitor")(audit.monitor_command)
app.command("train")(train.train_command)
app.command("serve")(serve.serve_command)
app.add_typer(rm.app, name="rm")
app.command("dpo")(rm.dpo_command)
app.add_typer(prm.app, name="prm")
app.command("eval")(evaluate.eval_command)
app.command("rescore")(evaluate.rescore_command)
app.command("select")(select.select_command)


def main() -> None:
    app()
