"""Rich tables for the end of a ``batch pull`` / ``batch push`` run."""

from __future__ import annotations

from decimal import Decimal

from rich.table import Table

from .ingest import FileReport
from .payments import PushResult

__all__ = ["pull_table", "push_table"]

STYLES = {"loaded": "green", "quarantined": "red", "already-ingested": "dim", "claimed-elsewhere": "yellow"}


def pull_table(reports: list[FileReport], elapsed: float) -> Table:
    table = Table(title="batch pull", show_footer=True)
    records = sum(r.records for r in reports)
    table.add_column("file", footer=f"{len(reports)} file(s)")
    table.add_column("status")
    table.add_column("seq")
    table.add_column("records", justify="right", footer=str(records))
    table.add_column("loaded", justify="right", footer=str(sum(r.loaded for r in reports)))
    table.add_column("rejects", justify="right", footer=str(sum(r.rejects for r in reports)))
    table.add_column("dups", justify="right", footer=str(sum(r.duplicates for r in reports)))
    total = sum((Decimal(r.control_total) for r in reports if r.control_total and r.status == "loaded"), Decimal(0))
    table.add_column("control total", justify="right", footer=f"{total:f}")
    table.add_column("time s", justify="right", footer=f"{elapsed:.2f}")
    table.add_column("records/s", justify="right", footer=f"{records / elapsed:,.0f}" if elapsed > 0 else "-")
    table.add_column("note")
    for r in reports:
        style = STYLES.get(r.status, "")
        note = "; ".join(x for x in (r.reason, r.changed, r.sequence_note) if x)
        table.add_row(r.file_name, f"[{style}]{r.status}[/]" if style else r.status,
                      "" if r.seq_no is None else str(r.seq_no), str(r.records), str(r.loaded), str(r.rejects),
                      str(r.duplicates), r.control_total or "", f"{r.seconds:.2f}",
                      f"{r.records_per_second:,.0f}" if r.seconds else "", note)
    return table


def push_table(result: PushResult) -> Table:
    title = f"batch push {result.file_name}: {result.status}"
    if result.ack_status:
        title += f" (file {result.ack_status}{': ' + result.ack_reason if result.ack_reason else ''})"
    table = Table(title=title)
    for col in ("reference", "from", "to", "amount", "status", "reason"):
        table.add_column(col)
    for p in result.payments:
        style = {"posted": "green", "rejected": "red"}.get(p["status"], "yellow")
        reason = " ".join(x for x in (p.get("reason_code"), p.get("reason")) if x)
        table.add_row(p["reference"], p["from_account"], p["to_account"], f"{p['amount']} {p['currency']}",
                      f"[{style}]{p['status']}[/]", reason)
    return table
