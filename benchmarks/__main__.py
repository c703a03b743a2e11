"""``python -m benchmarks`` (``make bench``): run every ``benchmarks/bench_*.py`` and report.

Each module exposes ``run() -> list[dict]`` returning rows
``{"name", "value", "unit", "baseline", "baseline_value", "ratio", "target"}`` measured beside
their baseline in the same run. This prints one table and writes ``benchmarks/results.json``.
Names are stable across runs so results can be compared over time. Benchmarks report numbers;
they never fail a build (tests assert behaviour).
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import time
import traceback
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
FIELDS = ("name", "value", "unit", "baseline", "baseline_value", "ratio", "target")


def discover(only: list[str] | None) -> list[str]:
    names = sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))
    if only:
        names = [n for n in names if any(o in n for o in only)]
    return names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks")
    p.add_argument("only", nargs="*", help="run only modules whose name contains one of these")
    p.add_argument("--out", type=Path, default=HERE / "results.json")
    args = p.parse_args(argv)
    console = Console()
    rows: list[dict] = []
    failures: list[str] = []
    for name in discover(args.only):
        console.print(f"[bold]{name}[/bold] ...")
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            got = module.run()
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others
            failures.append(name)
            console.print(traceback.format_exc())
            continue
        for row in got:
            missing = [f for f in FIELDS if f not in row]
            if missing:
                raise SystemExit(f"{name}: result row {row.get('name')!r} lacks {missing}")
            rows.append({f: row[f] for f in FIELDS})
        console.print(f"  done in {time.perf_counter() - t0:.1f} s")
    table = Table(title="corebridge benchmarks")
    for col in ("name", "value", "unit", "baseline", "baseline value", "ratio", "target"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], _fmt(r["value"]), r["unit"], str(r["baseline"]), _fmt(r["baseline_value"]),
                      _fmt(r["ratio"]), str(r["target"]))
    console.print(table)
    if args.only and args.out.exists():  # a partial run updates its rows and keeps the others
        fresh = {r["name"] for r in rows}
        kept = [r for r in json.loads(args.out.read_text()) if r.get("name") not in fresh]
        rows = kept + rows
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    if failures:
        console.print(f"[red]benchmarks that crashed: {failures}[/red]")
        return 1
    return 0


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


if __name__ == "__main__":
    sys.exit(main())
