"""`aupguard web`, `aupguard users ...`, `aupguard tokens ...`."""

from __future__ import annotations

import os
import sys

import typer

from aupguard.cli_support import console, print_json, state

ROLE_HELP = "Role: read-only, analyst, legal (sees restricted content.csam cases) or admin."


def _password(prompt_twice: bool, given_env: str | None) -> str:
    if given_env:
        value = os.environ.get(given_env)
        if not value:
            from aupguard.errors import InputError

            raise InputError(f"--password-env {given_env}: that environment variable is empty")
        return value
    if not sys.stdin.isatty():
        # Scripts pipe the password in (one line): never take it from argv, where
        # every user of the machine can read it in the process list.
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=prompt_twice)


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def register(root: typer.Typer) -> None:
    @root.command("web")
    def web(
        ctx: typer.Context,
        host: str = typer.Option(None, "--host", help="Listen address (default: [web] host, 127.0.0.1)."),
        port: int = typer.Option(None, "--port", help="TCP port (default: [web] port, 8080)."),
    ) -> None:
        """Serve the web console and the REST API (OpenAPI at /docs)."""
        from aupguard.web.app import serve

        st = state(ctx)
        host = host or st.settings.web.host
        port = port or st.settings.web.port
        console.print(f"console and API on [bold]http://{host}:{port}/[/] (API docs at /docs); "
                      "create a login with `aupguard users add NAME --role analyst`")
        if not _loopback(host) and not st.settings.web.cookie_secure:
            console.print("[yellow]warning:[/] listening beyond loopback over plain HTTP: put an "
                          "HTTPS reverse proxy in front and set [web] cookie_secure = true")
        serve(st.settings, st.store, host, port)

    users = typer.Typer(help="Console users and their roles.", no_args_is_help=True)
    root.add_typer(users, name="users")

    @users.command("add")
    def users_add(
        ctx: typer.Context,
        name: str = typer.Argument(..., help="Login name (no spaces)."),
        role: str = typer.Option("analyst", "--role", "-r", help=ROLE_HELP),
        generate: bool = typer.Option(False, "--generate", help="Generate a password and print it."),
        password_env: str = typer.Option(None, "--password-env",
                                         help="Read the password from this environment variable."),
    ) -> None:
        """Add a console user (asks for the password, or reads one line from stdin)."""
        import secrets

        from aupguard.web import auth

        password = secrets.token_urlsafe(15) if generate else _password(True, password_env)
        with state(ctx).store.session() as session:
            auth.add_user(session, name, role, password, actor="cli")
        console.print(f"added user [bold]{name}[/] with role [bold]{role}[/]")
        if generate:
            console.print(f"password: [bold]{password}[/] (shown once)", highlight=False)

    @users.command("list")
    def users_list(ctx: typer.Context,
                   as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """List console users."""
        from rich.table import Table

        from aupguard.web import auth

        with state(ctx).store.session() as session:
            rows = [{"name": u.name, "role": u.role, "disabled": u.disabled,
                     "created_at": u.created_at, "last_login_at": u.last_login_at}
                    for u in auth.list_users(session)]
        if as_json:
            print_json(rows)
            return
        table = Table("name", "role", "disabled", "created", "last login")
        for r in rows:
            table.add_row(r["name"], r["role"], "yes" if r["disabled"] else "",
                          r["created_at"].isoformat(timespec="seconds"),
                          r["last_login_at"].isoformat(timespec="seconds") if r["last_login_at"] else "")
        console.print(table if rows else "no users yet: `aupguard users add NAME --role analyst`")

    @users.command("passwd")
    def users_passwd(ctx: typer.Context, name: str = typer.Argument(..., help="Login name."),
                     password_env: str = typer.Option(None, "--password-env",
                                                      help="Read the password from this variable.")
                     ) -> None:
        """Set a user's password (logs out their sessions)."""
        from aupguard.web import auth

        password = _password(True, password_env)
        with state(ctx).store.session() as session:
            auth.set_password(session, name, password, actor="cli")
        console.print(f"password of [bold]{name}[/] changed")

    @users.command("disable")
    def users_disable(ctx: typer.Context, name: str = typer.Argument(..., help="Login name."),
                      enable: bool = typer.Option(False, "--enable", help="Re-enable instead.")
                      ) -> None:
        """Disable (or --enable) a user; disabling ends their sessions at once."""
        from aupguard.web import auth

        with state(ctx).store.session() as session:
            auth.set_disabled(session, name, not enable, actor="cli")
        console.print(f"user [bold]{name}[/] {'enabled' if enable else 'disabled'}")

    tokens = typer.Typer(help="API tokens for scripts (Authorization: Bearer ...).",
                         no_args_is_help=True)
    root.add_typer(tokens, name="tokens")

    @tokens.command("create")
    def tokens_create(
        ctx: typer.Context,
        name: str = typer.Argument(..., help="What the token is for, e.g. prometheus or ticket-sync."),
        role: str = typer.Option("read-only", "--role", "-r", help=ROLE_HELP),
    ) -> None:
        """Create an API token and print it (once: only its hash is stored)."""
        from aupguard.web import auth

        with state(ctx).store.session() as session:
            token = auth.create_token(session, name, role, actor="cli")
        console.print(f"token [bold]{name}[/] ({role}); use it as 'Authorization: Bearer TOKEN':",
                      highlight=False)
        sys.stdout.write(token + "\n")

    @tokens.command("list")
    def tokens_list(ctx: typer.Context,
                    as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """List API tokens (names, roles, prefixes; never the tokens)."""
        from rich.table import Table

        from aupguard.web import auth

        with state(ctx).store.session() as session:
            rows = [{"name": t.name, "role": t.role, "prefix": t.prefix, "revoked": t.revoked,
                     "created_at": t.created_at, "last_used_at": t.last_used_at}
                    for t in auth.list_tokens(session)]
        if as_json:
            print_json(rows)
            return
        table = Table("name", "role", "prefix", "revoked", "created", "last used")
        for r in rows:
            table.add_row(r["name"], r["role"], r["prefix"] + "…", "yes" if r["revoked"] else "",
                          r["created_at"].isoformat(timespec="seconds"),
                          r["last_used_at"].isoformat(timespec="seconds") if r["last_used_at"] else "")
        console.print(table if rows else "no tokens yet: `aupguard tokens create NAME`")

    @tokens.command("revoke")
    def tokens_revoke(ctx: typer.Context, name: str = typer.Argument(..., help="Token name.")) -> None:
        """Revoke an API token at once."""
        from aupguard.web import auth

        with state(ctx).store.session() as session:
            auth.revoke_token(session, name, actor="cli")
        console.print(f"token [bold]{name}[/] revoked")
