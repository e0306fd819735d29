"""The `aupguard` command: a root Typer app that each stage adds its commands to."""

from __future__ import annotations

import importlib
import sys

import typer

from aupguard import __version__
from aupguard.cli_support import AppState, err_console
from aupguard.errors import AupguardError

app = typer.Typer(
    name="aupguard",
    help="Acceptable-use enforcement for ISPs: flows, complaints, reputation, cases.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Each module exposes register(root_app). The order is the order of --help.
STAGE_CLIS = [
    "aupguard.setup_cli",        # init, demo, run
    "aupguard.registry.cli",     # clients
    "aupguard.policy.cli",       # policy
    "aupguard.flows.cli",        # collect, flows
    "aupguard.routing.cli",      # routes
    "aupguard.accounting.cli",   # report
    "aupguard.detect.cli",       # detect, incidents, mitigations, feeds
    "aupguard.intake.cli",       # intake
    "aupguard.reputation.cli",   # reputation, probe
    "aupguard.bulkmail.cli",     # optin, suppress, traps
    "aupguard.cases.cli",        # cases, audit
    "aupguard.web.cli",          # web, users
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aupguard {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: str = typer.Option(
        None, "--config", "-c", envvar="AUPGUARD_CONFIG",
        help="Path to aupguard.toml (default: ./aupguard.toml if present, else built-in defaults).",
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    ctx.obj = AppState(config)


for _name in STAGE_CLIS:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as exc:  # a stage not built yet
        if exc.name != _name:
            raise
        continue
    _module.register(app)


def main() -> None:
    try:
        # Non-standalone mode returns the exit code of typer.Exit instead of exiting.
        result = app(standalone_mode=False)
        sys.exit(result if isinstance(result, int) else 0)
    except AupguardError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(1)
    except Exception as exc:
        # Usage errors (unknown command, bad option) come from Typer's vendored click;
        # duck-type them rather than import a private module.
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            sys.exit(exc.exit_code)
        raise
