"""``corebridge batch``: the SFTP batch side of the core (issue 7).

* ``pull``: list the core's outbox, download new ``TXNHIST.D*`` files and ingest each one into the
  batch store (all or nothing per file; quarantine with a JSON report), then a summary table.
* ``push --transfers FILE.json``: a payment batch (PAYIN) uploaded to the core's inbox, then its
  acknowledgment (PAYACK) reconciled into the store.

SFTP settings come from the facade's configuration (``COREBRIDGE_BACKENDS__SFTP__HOST`` ...), each
overridable by a flag. The store is a SQLite path or a PostgreSQL DSN (``--store`` or
``COREBRIDGE_BATCH__STORE``, the same variable the facade's ``batch`` settings read; default
``var/batch/batch.db``).

Exit codes: 0 all good, 1 a file was quarantined / a payment was rejected / no ack in time, 2 the
command could not run (configuration, connection, duplicate references).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from adapters.errors import CoreError
from adapters.sftp import SftpBatchDropbox
from api.batch import POLICIES, DuplicateReferences, PaymentPusher, PullDirs, TxnhistIngestor, open_store, pull
from api.batch.report import pull_table, push_table
from api.settings import load_settings
from mappings.engine import MappingRegistry

__all__ = ["batch_app", "build_dropbox"]

batch_app = typer.Typer(help="Batch files over the core's SFTP dropbox: pull history, push payments.",
                        no_args_is_help=True)

StoreOpt = Annotated[str, typer.Option("--store", envvar="COREBRIDGE_BATCH__STORE",
                                       help="SQLite path or postgresql:// DSN of the batch store")]
WorkDirOpt = Annotated[Path, typer.Option("--work-dir", envvar="COREBRIDGE_BATCH__WORK_DIR",
                                          help="local folders: incoming, archive, quarantine, rejects, outgoing")]
HostOpt = Annotated[str | None, typer.Option("--host", help="SFTP host (default: configuration)")]
PortOpt = Annotated[int | None, typer.Option("--port", help="SFTP port")]
UserOpt = Annotated[str | None, typer.Option("--user", help="SFTP user")]
PasswordOpt = Annotated[str | None, typer.Option("--password", envvar="COREBRIDGE_BATCH_SFTP_PASSWORD",
                                                 help="SFTP password")]
FingerprintOpt = Annotated[str | None, typer.Option("--fingerprint", help="pinned host key, SHA256:...")]
KnownHostsOpt = Annotated[Path | None, typer.Option("--known-hosts", help="known_hosts file pinning the host")]


def build_dropbox(*, host: str | None = None, port: int | None = None, user: str | None = None,
                  password: str | None = None, fingerprint: str | None = None,
                  known_hosts: Path | None = None) -> SftpBatchDropbox:
    """The adapter from the configuration, flags winning; a bad configuration exits 2."""
    try:
        sftp = load_settings().backends.sftp
        update: dict[str, Any] = {k: v for k, v in (("host", host), ("port", port), ("username", user),
                                                     ("host_key_fingerprint", fingerprint),
                                                     ("known_hosts_path", known_hosts)) if v is not None}
        if password is not None:
            from pydantic import SecretStr

            update["password"] = SecretStr(password)
        return SftpBatchDropbox(sftp.model_copy(update=update).to_adapter_settings())
    except (ValidationError, ValueError, FileNotFoundError) as exc:
        typer.echo(f"invalid SFTP configuration: {exc}", err=True)
        raise typer.Exit(2) from None


def _registry() -> MappingRegistry:
    directory = load_settings().mappings_dir
    return MappingRegistry.load(directory) if directory else MappingRegistry.load()


@batch_app.command("pull")
def pull_cmd(
    store: StoreOpt = "var/batch/batch.db",
    work_dir: WorkDirOpt = Path("var/batch"),
    policy: Annotated[str, typer.Option("--policy", help=f"record-level problems: {' | '.join(POLICIES)}")]
    = "reject-file",
    pattern: Annotated[str, typer.Option("--pattern", help="outbox files to ingest")] = "TXNHIST.D*",
    host: HostOpt = None, port: PortOpt = None, user: UserOpt = None, password: PasswordOpt = None,
    fingerprint: FingerprintOpt = None, known_hosts: KnownHostsOpt = None,
) -> None:
    """Download new end-of-day TXNHIST files and ingest each one (all or nothing)."""
    if policy not in POLICIES:
        typer.echo(f"--policy must be one of {', '.join(POLICIES)}", err=True)
        raise typer.Exit(2)
    console = Console()
    dirs = PullDirs(work_dir)
    dropbox = build_dropbox(host=host, port=port, user=user, password=password, fingerprint=fingerprint,
                            known_hosts=known_hosts)
    started = time.perf_counter()
    progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                        TextColumn("{task.fields[n]} records"), TimeRemainingColumn(), console=console,
                        transient=True, disable=not console.is_terminal)
    task = progress.add_task("", total=None, n=0)

    def on_file(name: str, size: int) -> None:
        progress.reset(task, description=name, total=size, n=0)

    def on_batch(records: int, position: int) -> None:
        progress.update(task, completed=position, n=records)

    try:
        with open_store(store) as db, dropbox, progress:
            ingestor = TxnhistIngestor(db, _registry(), policy=policy, quarantine_dir=dirs.quarantine,
                                       rejects_dir=dirs.rejects, on_batch=on_batch,
                                       decoder_process=load_settings().batch.decoder_process)
            reports = pull(dropbox, ingestor, outbox=dropbox.settings.outbox, dirs=dirs, pattern=pattern,
                           on_file=on_file)
    except CoreError as exc:
        typer.echo(f"batch pull failed: {exc}", err=True)
        raise typer.Exit(2) from None
    console.print(pull_table(reports, time.perf_counter() - started))
    if any(r.status == "quarantined" for r in reports):
        raise typer.Exit(1)


@batch_app.command("push")
def push_cmd(
    transfers: Annotated[Path, typer.Option("--transfers", exists=True, dir_okay=False,
                                            help="JSON list: reference, from, to, amount, currency, memo")],
    store: StoreOpt = "var/batch/batch.db",
    work_dir: WorkDirOpt = Path("var/batch"),
    ack_timeout: Annotated[float, typer.Option("--ack-timeout", help="seconds to wait for PAYACK")] = 60.0,
    host: HostOpt = None, port: PortOpt = None, user: UserOpt = None, password: PasswordOpt = None,
    fingerprint: FingerprintOpt = None, known_hosts: KnownHostsOpt = None,
) -> None:
    """Upload a payment batch (PAYIN) and reconcile the core's acknowledgment (PAYACK)."""
    from api.batch import load_transfers

    try:
        items = load_transfers(transfers)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    dropbox = build_dropbox(host=host, port=port, user=user, password=password, fingerprint=fingerprint,
                            known_hosts=known_hosts)
    try:
        with open_store(store) as db, dropbox:
            pusher = PaymentPusher(db, _registry(), dropbox, inbox=dropbox.settings.inbox,
                                   outbox=dropbox.settings.outbox, work_dir=work_dir)
            result = pusher.push(items, ack_timeout=ack_timeout)
    except DuplicateReferences as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except CoreError as exc:
        typer.echo(f"batch push failed: {exc}", err=True)
        raise typer.Exit(2) from None
    Console().print(push_table(result))
    if result.status != "acked" or result.rejected:
        if result.status == "ack_missing":
            typer.echo(f"no acknowledgment: {result.ack_reason}", err=True)
        raise typer.Exit(1)
