"""The `payoff` application: one Typer app, one module per command family. The grammar every
command follows is docs/cli.md (checked by tests/cli/test_conventions.py)."""

from __future__ import annotations

import typer

from payoff.cli import audit, dpo, info, prm, rescore, rl, rm, score, select, serve, suites, view

app = typer.Typer(
    name="payoff",
    help="Rewards for RL post-training: define, compose, verify, audit, serve and use them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Verbs on a reward or on scored data.
app.command("score")(score.score_command)
app.command("audit")(audit.audit_command)
app.command("monitor")(audit.monitor_command)
app.command("eval")(suites.eval_command)
app.command("rescore")(rescore.rescore_command)
app.command("select")(select.select_command)
app.command("serve")(serve.serve_command)
app.command("view")(view.view_command)
app.command("rewards")(info.rewards_command)
app.command("doctor")(info.doctor_command)
# Nouns with their verbs: what is trained, then how.
app.add_typer(rl.app, name="rl")
app.add_typer(rm.app, name="rm")
app.add_typer(prm.app, name="prm")
app.add_typer(dpo.app, name="dpo")


def main() -> None:
    app()
