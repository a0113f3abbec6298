"""`payoff serve`: a reward over HTTP (see payoff.serve.app for the endpoints)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from payoff.cli.options import CONFIG, ENV, REWARD, SET, TIMEOUT_S, WORKERS, resolve_reward, worker_count


def serve_command(
    reward: list[str] = REWARD,
    config: Path | None = CONFIG,
    set_: list[str] = SET,
    workers: int | None = WORKERS,
    timeout_s: float | None = TIMEOUT_S,
    host: str = typer.Option("127.0.0.1", "--host", help="The address to listen on."),
    port: int = typer.Option(8000, "--port", help="The port to listen on."),
    token: str | None = typer.Option(None, "--token", envvar="PAYOFF_TOKEN", help="Require 'Authorization: Bearer TOKEN'."),
    max_pending: int = typer.Option(20_000, "--max-pending", help="Samples queued before requests get 503."),
    max_body_mb: float = typer.Option(16.0, "--max-body-mb", help="Request bodies above this get 413."),
    backend: str = typer.Option("local", "--backend", help="local (a worker pool here) or ray (a Ray cluster)."),
    env: str | None = ENV,
    max_sessions: int = typer.Option(256, "--max-sessions", help="Episode sessions open at once before opens get 503."),
    session_ttl_s: float = typer.Option(600.0, "--session-ttl-s", help="An episode session idle this long is closed."),
) -> None:
    """Serve a reward: POST /v1/score, POST /get_reward (OpenRLHF), episode sessions (/v1/episodes),
    NeMo-Gym's resources-server routes, GET /v1/rewards, /healthz, /metrics."""
    import uvicorn

    from payoff.serve.app import create_app

    scorer = resolve_reward(reward, config, set_)
    if backend not in ("local", "ray"):
        raise typer.BadParameter("backend must be local or ray", param_hint="--backend")
    engine = None
    if backend == "ray":
        from payoff.engine.ray_backend import RayEngine
        from payoff.serve.ray_sessions import RaySessions

        engine = RayEngine(scorer, timeout_s=timeout_s)
        sessions = RaySessions(max_sessions=max_sessions, ttl_s=session_ttl_s)
    else:
        from payoff.serve.sessions import Sessions

        sessions = Sessions(max_sessions=max_sessions, ttl_s=session_ttl_s)
    app = create_app(scorer, workers=worker_count(workers), timeout_s=timeout_s, token=token, max_pending=max_pending,
                     max_body_bytes=int(max_body_mb * 1024 * 1024), engine=engine, sessions=sessions, env=env)
    typer.echo(f"payoff serve: {scorer.name} on http://{host}:{port} (pid {os.getpid()})", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=30)
