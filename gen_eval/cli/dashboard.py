"""``gen-eval dashboard``: the Streamlit app over a folder of runs (registered by ``gen_eval.cli.main``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from gen_eval.cli.common import _guard, app

DASHBOARD_EXAMPLES = """
[bold]Examples[/bold]

  gen-eval demo && gen-eval dashboard          # the bundled models, from runs/
  gen-eval dashboard runs/cohort --port 8600
  gen-eval dashboard runs/class --host 0.0.0.0 --port 8600   # a human study: reachable by a class
"""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def streamlit_command(runs_dir: Path, port: int, host: str = "127.0.0.1") -> list[str]:
    """The command that serves the dashboard on ``host:port`` over ``runs_dir``."""
    from dashboards import APP

    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--client.toolbarMode", "viewer",  # no "Deploy" or developer menu in a results viewer
        "--", str(runs_dir),
    ]  # fmt: skip


@app.command(epilog=DASHBOARD_EXAMPLES)
def dashboard(
    runs_dir: Annotated[Path, typer.Argument(help="Folder of runs (searched recursively).")] = Path("runs"),
    port: Annotated[int | None, typer.Option(help="Port (default: a free one).")] = None,
    host: Annotated[
        str,
        typer.Option(
            help="Address to serve on: 127.0.0.1 (this machine only) or 0.0.0.0 (every network interface: "
            "what a class taking a human study needs; anyone who can reach the machine sees the runs)."
        ),
    ] = "127.0.0.1",
) -> None:
    """Open the Streamlit dashboard over RUNS_DIR: leaderboard, run, compare, mode collapse, latent
    explorer, human judgement.

    Serves on 127.0.0.1 unless --host says otherwise, and prints the URL; Ctrl+C stops it.
    """
    import ipaddress

    from dashboards import RUNS_ENV
    from gen_eval.errors import GenEvalError

    def check_host() -> None:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise GenEvalError(f"--host {host!r} is not an IP address; use 127.0.0.1 or 0.0.0.0") from None

    _guard(check_host)
    chosen = port or free_port(host)
    shown = socket.gethostname() if host == "0.0.0.0" else host
    typer.echo(f"gen-eval dashboard over {runs_dir.resolve()}: http://{shown}:{chosen}  (Ctrl+C to stop)")
    env = {**os.environ, RUNS_ENV: str(runs_dir.resolve())}

    command = streamlit_command(runs_dir.resolve(), chosen, host)
    sys.stdout.flush()
    if os.name == "posix":  # become the server: a signal to this process reaches Streamlit itself
        os.execve(sys.executable, command, env)
    try:
        code = subprocess.call(command, env=env)
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)
