"""Deterministic seed data: customers, 1-4 accounts each, about two years of history.

The same (seed, customers, business date) gives the same rows and the same SQLite file bytes:
everything is drawn from one ``random.Random(seed)`` in a fixed order, no wall clock is read,
and the file is written with the rollback journal off and VACUUMed before it is published.
"""

from __future__ import annotations

import calendar
import datetime as dt
import os
import random
import sqlite3
from decimal import Decimal
from pathlib import Path

from .legacy import db_money, pad, to_cyymmdd
from .store import ddl_statements

SCHEMA_VERSION = "3"
DEFAULT_BUSINESS_DATE = dt.date(2026, 11, 27)
HISTORY_DAYS = 730

FIRST = ["JAMES", "MARY", "ROBERT", "PATRICIA", "JOHN", "JENNIFER", "MICHAEL", "LINDA", "DAVID",
         "ELIZABETH", "WILLIAM", "BARBARA", "RICHARD", "SUSAN", "JOSEPH", "JESSICA", "THOMAS",
         "SARAH", "HANS", "GRETA", "PIERRE", "CLAIRE", "YUKI", "HIROSHI", "OLIVIA", "NOAH",
         "EMMA", "LUCA", "SOFIA", "MATTEO", "AMELIA", "OLIVER", "ISLA", "GEORGE", "FREYA"]
LAST = ["SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "WILSON",
        "TAYLOR", "ANDERSON", "THOMAS", "MOORE", "MARTIN", "JACKSON", "WHITE", "HARRIS",
        "MUELLER", "SCHMIDT", "SCHNEIDER", "DUBOIS", "LEFEBVRE", "ROSSI", "BIANCHI", "TANAKA",
        "SATO", "SUZUKI", "OBRIEN", "MURPHY", "KOWALSKI", "NOWAK", "JANSSEN", "DE VRIES"]
COMPANY = ["ACME TRADING LTD", "NORTHWIND FOODS", "CONTOSO LOGISTICS", "FABRIKAM GMBH",
           "TAILSPIN TOYS", "WIDE WORLD IMPORTERS", "LITWARE SA", "ADVENTURE WORKS",
           "PROSEWARE INC", "WOODGROVE CONSULTING", "ALPINE SKI HOUSE", "COHO WINERY"]
MERCHANTS = ["TESCO STORES", "AMAZON MKTPLACE", "SHELL FUEL", "STARBUCKS", "UBER TRIP",
             "NETFLIX.COM", "ALDI MARKT", "CARREFOUR", "IKEA", "APPLE.COM/BILL", "LIDL",
             "BOOTS PHARMACY", "ZARA", "DELIVEROO", "SPOTIFY", "7-ELEVEN", "MIGROS", "COOP",
             "EDEKA", "MONOPRIX", "FAMILYMART", "LAWSON", "BP CONNECT", "H&M"]
BILLERS = ["BRITISH GAS", "VODAFONE", "CITY WATER", "ALLIANZ INSURANCE", "GYM MEMBERSHIP",
           "COUNCIL TAX", "E.ON ENERGIE", "EDF ENERGY", "SWISSCOM", "NTT DOCOMO"]
EMPLOYERS = ["ACME CORP", "GLOBEX", "INITECH", "UMBRELLA PLC", "STARK INDUSTRIES", "WAYNE ENT",
             "HOOLI", "SOYLENT", "VANDELAY IND", "MASSIVE DYNAMIC"]
CITIES = {
    "US": [("NEW YORK", "10001"), ("CHICAGO", "60601"), ("AUSTIN", "73301")],
    "DE": [("BERLIN", "10115"), ("MUENCHEN", "80331"), ("HAMBURG", "20095")],
    "FR": [("PARIS", "75001"), ("LYON", "69001")],
    "GB": [("LONDON", "EC1A 1BB"), ("MANCHESTER", "M1 1AE"), ("EDINBURGH", "EH1 1YZ")],
    "CH": [("ZURICH", "8001"), ("GENEVA", "1201")],
    "JP": [("TOKYO", "100-0001"), ("OSAKA", "530-0001")],
}
HOME = [("US", "USD", 30), ("DE", "EUR", 18), ("FR", "EUR", 12), ("GB", "GBP", 25),
        ("CH", "CHF", 10), ("JP", "JPY", 5)]
STREETS = ["HIGH ST", "MAIN ST", "STATION RD", "CHURCH LN", "PARK AVE", "MILL RD", "KING ST"]
# Scale of everyday amounts per currency (JPY has no minor unit: whole amounts only).
SCALE = {"USD": Decimal(1), "EUR": Decimal(1), "GBP": Decimal(1), "CHF": Decimal(1),
         "JPY": Decimal(150)}
MINOR = {"JPY": 0}


def check_digit(digits: str) -> str:
    """Mod-10 check digit with weights 7-3-1, as many cores use for account numbers."""
    weights = (7, 3, 1)
    total = sum(int(c) * weights[i % 3] for i, c in enumerate(digits))
    return str((10 - total % 10) % 10)


def _amount(rng: random.Random, lo: float, hi: float, currency: str) -> Decimal:
    raw = Decimal(str(round(rng.uniform(lo, hi), 2))) * SCALE[currency]
    return raw.quantize(Decimal(1) if MINOR.get(currency) == 0 else Decimal("0.01"))


def _month_starts(start: dt.date, end: dt.date) -> list[dt.date]:
    out, d = [], start.replace(day=1)
    while d <= end:
        out.append(d)
        d = (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return out


class _Seeder:
    def __init__(self, seed: int, customers: int, business_date: dt.date) -> None:
        self.rng = random.Random(seed)
        self.customers = customers
        self.bdate = business_date
        self.hist_start = business_date - dt.timedelta(days=HISTORY_DAYS)
        self.cust_rows: list[tuple] = []
        self.acct_rows: list[tuple] = []
        self.txn_rows: list[tuple] = []
        self.serial = 0

    def run(self) -> None:
        for i in range(1, self.customers + 1):
            self._customer(i)

    def _customer(self, i: int) -> None:
        rng = self.rng
        cust_no = f"C{i:07d}"
        country, currency, _ = rng.choices(HOME, weights=[h[2] for h in HOME])[0]
        business = rng.random() < 0.1
        stat = rng.choices("ABC", weights=[97, 2, 1])[0]
        if business:
            last, first, birth = rng.choice(COMPANY), "", 0
        else:
            last, first = rng.choice(LAST), rng.choice(FIRST)
            birth = to_cyymmdd(dt.date(rng.randint(1945, 2005), rng.randint(1, 12), rng.randint(1, 28)))
        city, post = rng.choice(CITIES[country])
        branch = f"{rng.randint(1, 60) * 10 + 1000:04d}"
        created = self.bdate - dt.timedelta(days=rng.randint(60, 7000))
        email = f"{(first or 'INFO').lower()}.{last.replace(' ', '').lower()}{i}@example.com"
        self.cust_rows.append((
            pad(cust_no, 10), "B" if business else "P", stat, pad(last, 30), pad(first, 20), birth,
            f"{rng.randint(100, 899):03d}-{rng.randint(10, 99):02d}-{rng.randint(1000, 9999):04d}",
            pad(email[:50], 50), pad(f"+{rng.randint(10**9, 10**10 - 1)}", 15),
            pad(f"{rng.randint(1, 250)} {rng.choice(STREETS)}", 35), pad(city, 25), pad(post, 10),
            country, branch, to_cyymmdd(created)))
        n_accts = rng.choices([1, 2, 3, 4], weights=[35, 35, 20, 10])[0]
        others = [c for _, c, _ in HOME if c != currency]
        for k in range(n_accts):
            if k == 0:
                prod, curr = ("BUS1" if business else "CHK1"), currency
            elif k == 1:
                prod, curr = "SAV1", currency
            else:
                prod, curr = "FCY1", rng.choice(sorted(set(others)))
            self._account(cust_no, branch, prod, curr, created, stat, first or last)

    def _account(self, cust_no: str, branch: str, prod: str, curr: str, created: dt.date,
                 cust_stat: str, holder: str) -> None:
        rng = self.rng
        self.serial += 1
        body = f"{branch}{self.serial:07d}"
        acct_no = body + check_digit(body)
        stat = "C" if cust_stat == "C" else rng.choices("ADFC", weights=[90, 4, 3, 3])[0]
        opened = created + dt.timedelta(days=rng.randint(0, max(0, (self.bdate - created).days - 30)))
        closed = (self.bdate - dt.timedelta(days=rng.randint(5, 300))) if stat == "C" else None
        if closed is not None and closed <= opened:
            closed = opened + dt.timedelta(days=1)
        start = max(opened, self.hist_start)
        end = closed or self.bdate
        bal = _amount(rng, 50, 4000, curr) if opened < self.hist_start else Decimal(0)
        bal = bal.quantize(Decimal("0.01"))
        seq, last_dt = 0, 0
        for posting_date, tm, code, drcr, amt, desc, channel in self._events(prod, curr, start, end):
            signed = amt if drcr == "C" else -amt
            if bal + signed < 0:
                continue
            bal += signed
            seq += 1
            value_dt = posting_date - dt.timedelta(days=1) if code == "POS" and tm % 7 == 0 else posting_date
            last_dt = to_cyymmdd(posting_date)
            self.txn_rows.append((
                acct_no, seq, last_dt, tm, to_cyymmdd(value_dt), code, drcr, db_money(amt),
                db_money(bal), curr, pad(desc[:40], 40), " " * 16, " " * 12, channel, "P"))
        if stat == "C" and bal > 0:  # closing pays out the balance
            seq += 1
            last_dt = to_cyymmdd(end)
            self.txn_rows.append((
                acct_no, seq, last_dt, 120000, last_dt, "TFO", "D", db_money(bal), db_money(Decimal(0)),
                curr, pad("ACCOUNT CLOSURE PAYOUT", 40), " " * 16, " " * 12, "BRN", "P"))
            bal = Decimal(0)
        hold = Decimal(0)
        if stat == "A" and prod in ("CHK1", "BUS1") and rng.random() < 0.2 and bal > 0:
            hold = min(bal, _amount(rng, 5, 200, curr))
        title = pad(f"{holder[:18]} {prod}", 30)
        self.acct_rows.append((
            acct_no, pad(cust_no, 10), prod, curr, stat, title, db_money(bal), db_money(bal - hold),
            db_money(hold), to_cyymmdd(opened), to_cyymmdd(closed), last_dt, seq, branch))

    def _events(self, prod: str, curr: str, start: dt.date, end: dt.date):
        rng = self.rng
        events: list[tuple] = []
        employer = rng.choice(EMPLOYERS)
        billers = rng.sample(BILLERS, 2)
        payday = rng.randint(24, 28)
        for month in _month_starts(start, end):
            ndays = calendar.monthrange(month.year, month.month)[1]

            def day(d: int, month: dt.date = month, ndays: int = ndays) -> dt.date:
                return month.replace(day=min(d, ndays))

            if prod in ("CHK1", "BUS1"):
                events.append((day(payday), "SAL", "C", _amount(rng, 1800, 6500, curr),
                               f"SALARY {employer}", "BAT"))
                for _ in range(rng.randint(6, 14)):
                    events.append((day(rng.randint(1, ndays)), "POS", "D", _amount(rng, 3, 150, curr),
                                   f"POS {rng.choice(MERCHANTS)} {rng.randint(1000, 9999)}", "POS"))
                for _ in range(rng.randint(0, 3)):
                    amt = (Decimal(rng.randint(1, 20) * 20) * SCALE[curr]).quantize(Decimal("0.01"))
                    events.append((day(rng.randint(1, ndays)), "ATM", "D", amt,
                                   f"ATM WITHDRAWAL {rng.randint(1000, 9999)}", "ATM"))
                for biller in billers:
                    events.append((day(rng.randint(1, 10)), "DDR", "D", _amount(rng, 20, 400, curr),
                                   f"DD {biller}", "BAT"))
                events.append((day(ndays), "FEE", "D", _amount(rng, 2, 12, curr),
                               "MONTHLY ACCOUNT FEE", "SYS"))
                if rng.random() < 0.4:
                    events.append((day(rng.randint(1, ndays)), "DEP", "C", _amount(rng, 20, 900, curr),
                                   "CASH DEPOSIT BRANCH", "BRN"))
            elif prod == "SAV1":
                if rng.random() < 0.6:
                    events.append((day(rng.randint(1, ndays)), "TFI", "C", _amount(rng, 50, 800, curr),
                                   "STANDING ORDER SAVINGS", "BAT"))
                events.append((day(ndays), "INT", "C", _amount(rng, 0.5, 15, curr),
                               "CREDIT INTEREST", "SYS"))
            else:
                if rng.random() < 0.5:
                    events.append((day(rng.randint(1, ndays)), "DEP", "C", _amount(rng, 100, 2000, curr),
                                   "FX CONVERSION CREDIT", "WEB"))
                if rng.random() < 0.5:
                    events.append((day(rng.randint(1, ndays)), "POS", "D", _amount(rng, 5, 300, curr),
                                   f"POS {rng.choice(MERCHANTS)} {rng.randint(1000, 9999)}", "POS"))
        out = []
        for d, code, drcr, amt, desc, channel in events:
            if start <= d <= end and amt > 0:
                tm = rng.randint(6, 22) * 10_000 + rng.randint(0, 59) * 100 + rng.randint(0, 59)
                out.append((d, tm, code, drcr, amt, desc, channel))
        out.sort(key=lambda e: (e[0], e[1]))
        return out


def seed_sqlite(path: Path, *, seed: int = 1, customers: int = 1000,
                business_date: dt.date = DEFAULT_BUSINESS_DATE) -> None:
    """Write a freshly seeded ledger to ``path`` atomically (temp file, then rename)."""
    seeder = _Seeder(seed, customers, business_date)
    seeder.run()
    tmp = path.with_name(path.name + ".seeding")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        for stmt in ddl_statements():
            conn.execute(stmt)
        conn.executemany("INSERT INTO CUSTMAST VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", seeder.cust_rows)
        conn.executemany("INSERT INTO ACCTMAST VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", seeder.acct_rows)
        conn.executemany("INSERT INTO TXNHIST VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", seeder.txn_rows)
        meta = {"BUSDATE": str(to_cyymmdd(business_date)), "SEED": str(seed),
                "CUSTS": str(customers), "SCHEMAV": SCHEMA_VERSION,
                "SEEDDATE": str(to_cyymmdd(business_date))}
        conn.executemany("INSERT INTO CTLREC VALUES (?, ?)",
                         [(k.ljust(8), v.ljust(64)) for k, v in sorted(meta.items())])
        conn.execute("COMMIT")
        conn.execute("VACUUM")
    finally:
        conn.close()
    os.replace(tmp, path)


def seed_matches(path: Path, *, seed: int, customers: int) -> bool:
    """True when ``path`` holds a ledger seeded with these parameters and this schema version."""
    if not path.exists():
        return False
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = dict(conn.execute("SELECT TRIM(CTL_KEY), TRIM(CTL_VALUE) FROM CTLREC").fetchall())
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return (rows.get("SEED") == str(seed) and rows.get("CUSTS") == str(customers)
            and rows.get("SCHEMAV") == SCHEMA_VERSION)
