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
        """Run the whole system on built-in sample data, then serve the console.

        Imports a sample registry, replays generated attacks through softflowd into the
        live collector and detector, imports sample complaints, opens cases.
        """
        from aupguard.demo.runner import run_demo

        run_demo(state(ctx), serve=serve, data_dir=data_dir)

    @root.command("run")
    def run(
        ctx: typer.Context,
        flows: bool = typer.Option(True, "--flows/--no-flows", help="Collect and detect on flow exports."),
        intake: bool = typer.Option(True, "--intake/--no-intake", help="Run the abuse-mailbox SMTP listener."),
        web: bool = typer.Option(True, "--web/--no-web", help="Serve the console and REST API."),
    ) -> None:
        """Run everything: collection, detection, abuse mailbox, cases and the console.

        All on loopback unless configured otherwise.
        """
        import threading

        from aupguard import runner

        app = state(ctx)
        settings, store = app.settings, app.store
        services = runner.start(settings, store, flows=flows, intake=intake)
        where = []
        if services.collector is not None:
            where.append("flows on " + ", ".join(f"{a}:{p}" for a, p in services.collector.ports))
        if services.intake is not None:
            where.append(f"abuse mailbox on {settings.intake.listen_host}:{settings.intake.listen_port}")
        if web:
            where.append(f"console on http://{settings.web.host}:{settings.web.port}/")
        console.print("aupguard running: " + "; ".join(where) + " (Ctrl-C stops)")
        try:
            if web:
                from aupguard.web.app import serve

                serve(settings, store)
            else:
                threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            runner.stop(services)
            console.print("stopped; everything received was stored")

