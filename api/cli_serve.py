"""``corebridge serve`` (the facade alone, against configured backends) and ``corebridge demo``."""

from __future__ import annotations

from pathlib import Path

import typer


def serve(
    host: str | None = typer.Option(None, help="bind address (default: settings server.host)"),
    port: int | None = typer.Option(None, help="port (default: settings server.port)"),
    workers: int | None = typer.Option(None, help="worker processes (default: settings server.workers)"),
) -> None:
    """Run the REST facade against the backends in the settings (environment / COREBRIDGE_CONFIG_FILE)."""
    import uvicorn

    from api.settings import load_settings

    settings = load_settings()  # fail fast here, before forking workers, on a bad configuration
    uvicorn.run("api.bootstrap:create_app_from_settings", factory=True,
                host=host or settings.server.host, port=port or settings.server.port,
                workers=workers or settings.server.workers, log_config=None, access_log=False,
                root_path=settings.server.root_path)


def demo(
    port: int = typer.Option(8000, help="facade port"),
    host: str = typer.Option("127.0.0.1", help="bind address"),
    data_dir: Path = typer.Option(Path("var/mock"), help="the mock mainframe's data directory"),
    mock_args: list[str] = typer.Argument(None, help="passed to python -m mock_mainframe (after --)"),
) -> None:
    """Start the mock mainframe and the facade together (what `make run` does)."""
    from api.demo import main

    raise typer.Exit(main(["--host", host, "--port", str(port), "--data-dir", str(data_dir),
                           *(["--", *mock_args] if mock_args else [])]))


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("demo")(demo)
