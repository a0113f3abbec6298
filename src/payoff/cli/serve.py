"""`payoff serve`: a reward over HTTP (see payoff.serve.app for the endpoints)."""

from __future__ import annotations

import os
from pathlib import Path

import typer


def serve_command(
    reward: list[str] = typer.Option([], "--reward", "-r", help="NAME or NAME:WEIGHT (repeatable: a weighted sum)"),
    config: Path | None = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="A TOML file with a [reward] rubric."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    workers: int = typer.Option(2, "--workers", "-w", help="engine worker processes"),
    timeout: float | None = typer.Option(None, "--timeout-s", "--timeout", help="Per-sample timeout in seconds (--timeout: the old name)."),
    token: str | None = typer.Option(None, "--token", envvar="PAYOFF_TOKEN", help="require 'Authorization: Bearer TOKEN'"),
    max_pending: int = typer.Option(20_000, "--max-pending", help="samples queued before requests get 503"),
    max_body_mb: float = typer.Option(16.0, "--max-body-mb", help="request bodies above this get 413"),
    backend: str = typer.Option("local", "--backend", help="local (a worker pool here) or ray (a Ray cluster)"),
    set_: list[str] = typer.Option([], "--set", help="Override a --config value: reward.key=value (TOML value), repeatable."),
) -> None:
    """Serve a reward: POST /v1/score, POST /get_reward (OpenRLHF), GET /v1/rewards, /healthz, /metrics."""
    import uvicorn

    from payoff.cli.score import resolve_reward
    from payoff.serve.app import create_app

    scorer = resolve_reward(reward, config, set_)
    engine = None
    if backend == "ray":
        from payoff.engine.ray_backend import RayEngine

        engine = RayEngine(scorer, timeout_s=timeout)
    elif backend != "local":
        raise typer.BadParameter("backend must be local or ray", param_hint="--backend")
    app = create_app(scorer, workers=workers, timeout_s=timeout, token=token, max_pending=max_pending,
                     max_body_bytes=int(max_body_mb * 1024 * 1024), engine=engine)
    typer.echo(f"payoff serve: {scorer.name} on http://{host}:{port} (pid {os.getpid()})", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=30)
