"""The ODBC face: how a client reaches the ledger's DB2-style tables, and the PostgreSQL load.

The mock serves no ODBC protocol of its own: the "face" is the ledger database plus a DSN-less
connection string for a unixODBC driver, as a bank hands its integration team a DSN for a read
replica of the core's tables.

* Embedded default: the SQLite file, read through the SQLite3 ODBC driver (``libsqliteodbc``).
* PostgreSQL: :func:`load_into_postgres` copies a seeded SQLite ledger into a PostgreSQL
  database; from then on the mock runs ``Ledger(pg_dsn=...)`` on it as its single store of
  truth and clients read it through psqlODBC.

What the drivers hand back (measured with pyodbc 5.5, unixODBC 2.3.11):
  SQLite3 ODBC 0.9998  CHAR(n) -> str, blank-padded; DECIMAL(p,s) (money AND the CYYMMDD/HHMMSS
                       DECIMAL(p,0) columns) -> str, e.g. '125.4', '3787', '1261127';
                       untyped expressions (COUNT(*), SUM(..), LEDGER_BAL * 1) -> str with
                       StepAPI=1 (below), int/float with the driver's default StepAPI=0.
                       Convert through Decimal, never float; never SUM money in SQLite (REAL).
  psqlODBC 13          CHAR(n) -> str, blank-padded; DECIMAL(p,s) -> decimal.Decimal
                       (DECIMAL(p,0) -> Decimal without exponent, e.g. Decimal('1261127')).
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from .ledger.legacy import money
from .ledger.store import TABLES, ddl_statements

SQLITE_DRIVER = "SQLite3"  # NOT "SQLite": Debian's [SQLite] entry needs the missing SQLite 2 library
POSTGRES_DRIVER = "PostgreSQL Unicode"

# SQLite3 ODBC driver options (Debian's /usr/share/doc/libsqliteodbc/README), chosen for a reader:
#   Timeout=5000  busy timeout in ms (driver default 100000): the mock writes concurrently; in WAL
#                 mode a reader is rarely busy, and when it is it must give up well inside the
#                 client's own per-call deadline rather than after 100 s.
#   NoCreat=1     a wrong path fails ("connect failed (14)") instead of creating an empty ledger.
#   StepAPI=1     stream rows with sqlite3_step: without it the driver materialises the whole
#                 result first (a full TXNHIST scan of 1,000 customers, 334k rows: ~390 MB RSS
#                 vs ~26 MB, first batch after ~0.9 s vs ~4 ms; throughput about the same,
#                 160-250k rows/s with fetchmany(1000) on 2 cores).
#   NoTXN=1       transactions are only pretended: with pyodbc's default autocommit=False the
#                 driver would BEGIN on the first SELECT and keep that WAL snapshot (stale reads,
#                 and a WAL that cannot be checkpointed) until the client commits.
# Deliberately NOT set: JournalMode (the mock owns WAL mode; a reader must never change it),
# SyncPragma (only matters to writers), LongNames/ShortNames/NoWCHAR/BigInt/JDConv (defaults fit:
# bare DB2 column names, str values, no date conversion).
SQLITE_READER_OPTIONS: dict[str, str] = {
    "Timeout": "5000", "NoCreat": "1", "StepAPI": "1", "NoTXN": "1",
}


class _ConfigLike(Protocol):
    odbc: str
    pg_dsn: str | None

    @property
    def ledger_path(self) -> Path: ...


def odbc_value(value: str) -> str:
    """Quote an ODBC connection-string value when it needs it (``{...}``, ``}`` doubled)."""
    if value == "" or any(c in value for c in ";{}=") or value != value.strip():
        return "{" + value.replace("}", "}}") + "}"
    return value


def _join(pairs: dict[str, str]) -> str:
    return "".join(f"{k}={odbc_value(v) if k != 'DRIVER' else v};" for k, v in pairs.items())


def sqlite_connection_string(path: Path | str, **options: str) -> str:
    """``DRIVER={SQLite3};Database=<absolute path>;Timeout=...;``; keyword args override options."""
    pairs = {"DRIVER": "{" + SQLITE_DRIVER + "}", "Database": str(Path(path).resolve())}
    pairs.update(SQLITE_READER_OPTIONS)
    pairs.update(options)
    return _join(pairs)


def postgres_connection_string(pg_dsn: str, **options: str) -> str:
    """psqlODBC's DSN-less string built from a libpq URL or ``key=value`` DSN."""
    from psycopg.conninfo import conninfo_to_dict  # only when the PostgreSQL store is chosen

    params = {k: str(v) for k, v in conninfo_to_dict(pg_dsn).items() if v is not None}
    host = params.get("host", "localhost")
    if "," in host or host.startswith("/"):
        raise ValueError(f"psqlODBC needs one TCP host, not {host!r}")
    pairs = {
        "DRIVER": "{" + POSTGRES_DRIVER + "}",
        "Server": host,
        "Port": params.get("port", "5432"),
        "Database": params.get("dbname", params.get("user", getpass.getuser())),
        "Uid": params.get("user", getpass.getuser()),
        "Pwd": params.get("password", ""),
    }
    if "sslmode" in params:
        pairs["SSLmode"] = params["sslmode"]
    pairs.update(options)
    return _join(pairs)


def connection_string(config: _ConfigLike) -> str:
    """The DSN-less ODBC connection string a client uses to read this mock's ledger."""
    if config.odbc == "sqlite":
        return sqlite_connection_string(config.ledger_path)
    if config.odbc == "postgres":
        if not config.pg_dsn:
            raise ValueError("odbc='postgres' needs pg_dsn (a libpq URL or DSN)")
        return postgres_connection_string(config.pg_dsn)
    raise ValueError(f"unknown ODBC backend {config.odbc!r} (sqlite or postgres)")


# -- the published DDL, as data -------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    name: str
    type_name: str  # CHAR or DECIMAL
    size: int  # n of CHAR(n), precision of DECIMAL(p,s)
    scale: int  # s of DECIMAL(p,s); 0 for CHAR
    nullable: bool

    @property
    def declared(self) -> str:
        if self.type_name == "CHAR":
            return f"CHAR({self.size})"
        return f"DECIMAL({self.size},{self.scale})"


_COLUMN = re.compile(r"^\s*(\w+)\s+(CHAR|DECIMAL)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)(.*)$", re.I)


def published_columns() -> dict[str, list[Column]]:
    """Tables and columns of mock_mainframe/ddl/ledger.sql, in declaration order."""
    out: dict[str, list[Column]] = {}
    for stmt in ddl_statements():
        m = re.match(r"CREATE\s+TABLE\s+(\w+)\s*\((.*)\)\s*$", stmt, re.S | re.I)
        if not m:
            continue
        cols: list[Column] = []
        for line in m.group(2).splitlines():
            c = _COLUMN.match(line)
            if c:
                name, typ, size, scale, rest = c.groups()
                cols.append(Column(name.upper(), typ.upper(), int(size), int(scale or 0),
                                   "NOT NULL" not in rest.upper()))
        out[m.group(1).upper()] = cols
    if not out:
        raise RuntimeError("no CREATE TABLE found in the published DDL")
    return out


def _converter(col: Column) -> Any:
    """SQLite value -> exact value for PostgreSQL's COPY."""
    if col.type_name == "CHAR":
        def char(v: Any, width: int = col.size) -> str:
            s = str(v)
            if len(s) > width:
                raise ValueError(f"{col.name}: {s!r} longer than CHAR({width})")
            return s.ljust(width)  # PostgreSQL pads CHAR(n) too; keep the contract explicit
        return char
    if col.scale == 2:
        return money  # REAL -> Decimal via repr, quantized to cents: exact, never float arithmetic
    if col.scale == 0:
        def whole(v: Any) -> int:
            d = money(v)
            if d != d.to_integral_value():
                raise ValueError(f"{col.name}: {v!r} is not a whole number")
            return int(d)
        return whole
    q = Decimal(1).scaleb(-col.scale)
    return lambda v: (Decimal(repr(v)) if isinstance(v, float) else Decimal(str(v))).quantize(q)


def _sqlite_rows(sqlite_path: Path, table: str, cols: list[Column]) -> Iterator[tuple]:
    import sqlite3

    conn = sqlite3.connect(f"file:{Path(sqlite_path).resolve()}?mode=ro", uri=True)
    try:
        cur = conn.execute(f"SELECT {', '.join(c.name for c in cols)} FROM {table}")  # noqa: S608 - names from our DDL
        convert = [_converter(c) for c in cols]
        while batch := cur.fetchmany(5000):
            for row in batch:
                yield tuple(None if v is None else f(v) for f, v in zip(convert, row, strict=True))
    finally:
        conn.close()


def load_into_postgres(sqlite_path: Path | str, pg_dsn: str, *,
                       create_database: bool = True) -> dict[str, int]:
    """Copy a seeded SQLite ledger into PostgreSQL; returns the row count per table.

    Creates the database if missing (through the ``postgres`` maintenance database), then, in one
    transaction, drops the ledger tables, recreates them from the published DDL and fills them
    with ``COPY ... FROM STDIN``. Amounts are converted exactly (SQLite's REAL -> Decimal through
    ``legacy.money``); CHAR values keep their blank padding.
    """
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    sqlite_path = Path(sqlite_path)
    if not sqlite_path.exists():
        raise FileNotFoundError(sqlite_path)
    dbname = conninfo_to_dict(pg_dsn).get("dbname")
    if create_database:
        if not dbname:
            raise ValueError("pg_dsn names no database (dbname)")
        with psycopg.connect(make_conninfo(pg_dsn, dbname="postgres"), autocommit=True) as admin:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                   (dbname,)).fetchone()
            if not exists:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(dbname))))
    tables = published_columns()
    if set(tables) != set(TABLES):
        raise RuntimeError(f"DDL tables {sorted(tables)} differ from the store's {sorted(TABLES)}")
    counts: dict[str, int] = {}
    with psycopg.connect(pg_dsn) as conn:  # one transaction: all or nothing
        for table in reversed(TABLES):
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table.lower())))
        for stmt in ddl_statements():
            conn.execute(stmt)
        for table in TABLES:
            cols = tables[table]
            copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table.lower()),
                sql.SQL(", ").join(sql.Identifier(c.name.lower()) for c in cols))
            n = 0
            with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                for row in _sqlite_rows(sqlite_path, table, cols):
                    copy.write_row(row)
                    n += 1
            counts[table] = n
        for table in TABLES:
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table.lower())))
    return counts


__all__ = [
    "POSTGRES_DRIVER", "SQLITE_DRIVER", "SQLITE_READER_OPTIONS", "Column", "connection_string",
    "load_into_postgres", "odbc_value", "postgres_connection_string",
    "published_columns", "sqlite_connection_string",
]
