"""`payoff view PATH`: a local web page over a run folder, a scored JSONL file or a report."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import sys
from pathlib import Path

import typer

from payoff.cli.report import err


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def view_command(
    path: Path = typer.Argument(..., exists=True,
                                help="A run folder, a scored JSONL file, or an audit / eval / rescore report (or a folder of those)."),
    port: int = typer.Option(8765, "--port", help="The port to listen on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="The address to listen on; anything but loopback needs the printed token."),
) -> None:
    """Browse what a reward saw: curves, samples and episodes, groups, disagreements, audits and evals."""
    try:
        import uvicorn

        from payoff.view.app import create_app
    except ImportError as error:  # FastAPI and uvicorn come with the serve extra
        err.print(f"[red]payoff view needs {error.name}: pip install 'payoff[serve]'[/]")
        raise typer.Exit(2) from None
    from payoff.view.sources import NothingToView, detect

    try:
        source = detect(path)
    except NothingToView as error:
        err.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    # Off loopback the page shows prompts and completions to anyone who can reach the port: a token.
    token = None if is_loopback(host) else (os.environ.get("PAYOFF_VIEW_TOKEN") or secrets.token_urlsafe(18))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host.strip("[]"), port))
    except OSError as error:
        err.print(f"[red]cannot listen on {host}:{port}: {error.strerror}[/]")
        raise typer.Exit(2) from None
    listener.listen(2048)  # connections wait in the backlog from now on, not refused while uvicorn starts
    bound = listener.getsockname()[1]  # --port 0 picks a free one: say which
    app = create_app(source, token=token)
    err.print(f"payoff view: {', '.join(source.kinds())} of {source.path}")
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    typer.echo(f"http://{shown}:{bound}/" + (f"?token={token}" if token else ""), err=True)
    # The index is built by a thread that parses while requests are answered: hand the GIL over
    # every millisecond rather than every five, so a request never queues long behind it.
    sys.setswitchinterval(0.001)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[listener])
