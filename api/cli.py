"""The ``corebridge`` command line for integration engineers (typer + rich).

A thin root: each command group lives in its own module and is registered here
(``copybook`` in :mod:`api.cli_copybook`, ``mappings`` in :mod:`api.cli_mappings`, ``config``
and ``token`` in :mod:`api.cli_facade`, ``serve`` and ``demo`` in :mod:`api.cli_serve`).
Run as ``corebridge ...`` (the console script) or ``python -m api.cli ...``.
"""

from __future__ import annotations

import typer

from api.cli_batch import batch_app
from api.cli_copybook import app as copybook_app
from api.cli_facade import register as register_facade
from api.cli_mappings import app as mappings_app
from api.cli_serve import register as register_serve

app = typer.Typer(
    name="corebridge",
    help="corebridge: the integration adapter between a mobile-banking backend and a legacy core.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(copybook_app, name="copybook")
app.add_typer(mappings_app, name="mappings")
app.add_typer(batch_app, name="batch")
register_facade(app)  # config show, token
register_serve(app)  # serve, demo


if __name__ == "__main__":
    app(prog_name="corebridge")
