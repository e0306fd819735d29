"""`aupguard init`, `aupguard demo` and `aupguard run`."""

from __future__ import annotations

from pathlib import Path

import typer

from aupguard.cli_support import console, state


def register(root: typer.Typer) -> None:
    @root.command("init")
    def init(
        path: Path = typer.Argument(Path("aupguard.toml"), help="Config file to write."),
        data_dir: str = typer.Option("aupguard-data", help="Data directory (relative to the config)."),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing config file."),
    ) -> None:
        """Write a commented example config and create the data directory."""
        from aupguard.config import load_settings
        from aupguard.config_example import example_config
        from aupguard.store.db import open_store

        if path.exists() and not force:
            console.print(f"[yellow]{path} exists[/]; use --force to overwrite it.")
            raise typer.Exit(1)
        path.write_text(example_config(data_dir), encoding="utf-8")
        settings = load_settings(path)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        open_store(settings).dispose()
        console.print(f"wrote [bold]{path}[/] and created data directory [bold]{settings.data_dir}[/]")

    @root.command("demo")
    def demo(
        ctx: typer.Context,
        serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve the console after the demo."),
        data_dir: Path = typer.Option(None, "--data-dir",
                                      help="Where the demo keeps its data (default: ./aupguard-demo; wiped each run)."),
    ) -> None:
        """Run the whole system on built-in sample data: registry, attacks replayed by
        softflowd into the collector, sample complaints, cases, and the web console."""
        from aupguard.demo.runner import run_demo

        run_demo(state(ctx), serve=serve, data_dir=data_dir)
