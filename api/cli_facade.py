"""``corebridge config show`` and ``corebridge token``: the facade's commands.

Register them on the root app (``api/cli.py``) with :func:`register`::

    from api.cli_facade import register as register_facade
    register_facade(app)   # adds the ``config`` group and the ``token`` command

or one by one: ``app.add_typer(config_app, name="config")`` and ``app.command("token")(token)``.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from pydantic import ValidationError

from api.settings import Settings, load_settings, masked_dump

__all__ = ["config_app", "register", "token"]

config_app = typer.Typer(help="The facade's effective configuration.", no_args_is_help=True)


def _settings() -> Settings:
    try:
        return load_settings()
    except (ValidationError, FileNotFoundError) as exc:
        typer.echo(f"invalid configuration: {exc}", err=True)
        raise typer.Exit(2) from None


@config_app.command("show")
def show(
    fmt: Annotated[str, typer.Option("--format", help="json or env")] = "json",
) -> None:
    """Print the effective configuration (defaults < COREBRIDGE_CONFIG_FILE < environment), secrets masked."""
    data = masked_dump(_settings())
    if fmt == "json":
        typer.echo(json.dumps(data, indent=2, sort_keys=False))
    elif fmt == "env":
        for name, value in _flatten("COREBRIDGE", data):
            typer.echo(f"{name}={value}")
    else:
        typer.echo(f"unknown format {fmt!r}: json or env", err=True)
        raise typer.Exit(2)


def _flatten(prefix: str, data: object) -> list[tuple[str, str]]:
    if isinstance(data, dict):
        out: list[tuple[str, str]] = []
        for key, value in data.items():
            out.extend(_flatten(f"{prefix}{'__' if prefix != 'COREBRIDGE' else '_'}{key.upper()}", value))
        return out
    if data is None:
        return [(prefix, "")]
    if isinstance(data, list | bool):
        return [(prefix, json.dumps(data))]
    return [(prefix, str(data))]


def token(
    customer: Annotated[str, typer.Option("--customer", help="the token's subject: a customer id "
                                                             "(or the service client's id with --admin)")],
    scopes: Annotated[str, typer.Option("--scopes", help="comma-separated scopes")] = (
        "accounts:read,transactions:read,transfers:write"),
    ttl: Annotated[int, typer.Option("--ttl", min=1, max=86_400, help="lifetime in seconds")] = 3600,
    admin: Annotated[bool, typer.Option("--admin", help="add the admin scope (then send X-On-Behalf-Of)")] = False,
) -> None:
    """Mint a demo HS256 token with the demo secret (refused unless auth.demo_mode is on)."""
    from api.auth import mint_demo_token

    settings = _settings()
    if not settings.auth.demo_mode:
        typer.echo("refused: demo tokens need COREBRIDGE_AUTH__DEMO_MODE=true and COREBRIDGE_AUTH__DEMO_HS256_SECRET",
                   err=True)
        raise typer.Exit(1)
    try:
        minted = mint_demo_token(settings.auth, customer, [s.strip() for s in scopes.split(",")], ttl=ttl,
                                 admin=admin)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(minted)


def register(app: typer.Typer) -> None:
    """Add ``config show`` and ``token`` to the root ``corebridge`` app."""
    app.add_typer(config_app, name="config")
    app.command("token")(token)
