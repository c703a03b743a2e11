"""The bank harness shared by the chaos bank tests (:mod:`tests.chaos.test_bank` on one facade with a
SQLite store, :mod:`tests.chaos.test_bank_postgres` on two facades sharing one PostgreSQL store): the mock
mainframe behind a fault proxy, facades as child processes (one killed and restarted), the clients, the
fault schedule and the invariants (see test_bank's docstring). ``CHAOS_SEED=<n>`` replays a schedule.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from api.auth import mint_demo_token
from api.demo import DEMO_SCOPES, demo_settings
from api.settings import ENV_PREFIX, Settings
from api.store import StoreSettings
from mock_mainframe.config import MockConfig
from mock_mainframe.faultproxy import FaultProxy
from mock_mainframe.faults import FaultRule
from mock_mainframe.runtime import MockMainframe

FULL = os.environ.get("CHAOS_SCALE", "ci").lower() == "full"
TIMEOUT = 3600 if FULL else 300
ACCOUNTS = 50 if FULL else 10
CLIENTS = 16 if FULL else 5
TRANSFERS = 10_000 if FULL else 300
MOCK_CUSTOMERS = 300 if FULL else 60
PHASE_S = 2.0
THINK_S = 0.05 if FULL else 0.4  # mean pause of a client between transfers: the CI run spans ~15 fault phases
CLIENT_TIMEOUT = 1.5  # s: a mobile app's patience per request
TRANSFER_PATIENCE = 60.0  # s a client keeps retrying one transfer before it moves on (resolved at the end)
POLL_202_S = 5.0  # s a client polls the status URL after a 202 before moving on
SETTLE_S = 120.0  # s after the faults stop for every UNKNOWN to resolve (the test stops as soon as they have)
REJECT_SHARE = 0.05  # transfers far above any balance: definite failures (422)
SEED = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1, 2**31))
RETRYABLE = {409, 429, 500, 502, 503, 504}


# -- the stack --------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_env(settings: Settings) -> dict[str, str]:
    """``settings`` as the ``COREBRIDGE_...`` environment of a child process (a section per variable, as
    JSON; secrets revealed, since the child must use them)."""

    def plain(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, Path | Decimal):
            return str(value)
        raise TypeError(f"cannot pass {type(value).__name__} to a child process")

    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, dict):
            env[ENV_PREFIX + name.upper()] = json.dumps(value, default=plain)
        else:
            env[ENV_PREFIX + name.upper()] = plain(value) if isinstance(value, SecretStr | Path) else str(value)
    return env


class Facade:
    """The facade as a child process, as in production: ``python -m api.cli serve`` (uvicorn over the
    composition root, the store and the reconciler of ``settings.store``). ``restart`` kills it with
    SIGKILL (no shutdown: leases held, requests cut mid-flight) and starts a new process on the same store
    and port. Its log goes to ``log_dir``."""

    def __init__(self, settings: Settings, log_dir: Path, name: str = "facade") -> None:
        self.settings, self.log_dir, self.name = settings, log_dir, name
        self.port = settings.server.port
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        env.update(settings_env(self.settings))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {self.starts + 1}\n".encode())
            log.flush()
            self.proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve"], env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=1.0) as http:
            while True:
                assert self.proc.poll() is None, f"{self.name} exited ({self.proc.returncode}): {self.log_tail()}"
                assert time.monotonic() < deadline, f"{self.name} not up within 60 s: {self.log_tail()}"
                try:
                    if http.get(self.url + "/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        self.starts += 1

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL: the process dies on the spot, as in a crash or an OOM kill."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(20)
            self.kills += 1

    def restart(self) -> None:
        self.kill()
        self.start()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(20)
        self.proc = None


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    cfg = MockConfig(data_dir=tmp_path_factory.mktemp("bank-mock"), customers=MOCK_CUSTOMERS, seed=23,
                     soap_port=0, sftp_port=0, admin_port=0, outbox_days=1, fault_seed=SEED)
    mm = MockMainframe(cfg)
    mm.start()
    yield mm
    mm.stop()


@pytest.fixture(scope="module")
def proxy(mock):
    fp = FaultProxy(seed=SEED).start()
    up = mock.endpoints.soap_url.split("//", 1)[1].split("/", 1)[0]
    fp.create("soap", upstream=up)
    yield fp
    fp.stop()


def facade_settings(mock: MockMainframe, proxy: FaultProxy, port: int, clients: int, store: StoreSettings) -> Any:
    """Demo settings for a facade on ``port`` with ``store`` whose SOAP goes through the fault proxy;
    CI-friendly resilience."""
    ep, cfg = mock.endpoints, mock.config
    proxied = ep.soap_url.replace(ep.soap_url.split("//", 1)[1].split("/", 1)[0],
                                  f"127.0.0.1:{proxy.get('soap').port}", 1)
    endpoints = {"soap_url": proxied, "soap_user": cfg.soap_user, "soap_password": cfg.soap_password,
                 "odbc": ep.odbc_connection_string, "sftp_host": ep.sftp_host, "sftp_port": ep.sftp_port,
                 "sftp_user": cfg.sftp_user, "sftp_key": str(cfg.client_key_path),
                 "sftp_fingerprint": ep.sftp_fingerprint}
    settings = demo_settings(endpoints, "127.0.0.1", port)
    soap = settings.resilience.soap
    return settings.model_copy(update={
        "store": store,
        "rate_limit": settings.rate_limit.model_copy(update={"rate_per_second": 10_000.0, "burst": 10_000}),
        "resilience": settings.resilience.model_copy(update={"soap": soap.model_copy(update={
            "attempt_timeout": 1.0, "total_deadline": 2.5, "bulkhead_size": 2 * clients,
            "breaker": soap.breaker.model_copy(update={"wait_duration_in_open": 1.0,
                                                      "permitted_calls_in_half_open": 2})})})})


def on_port(settings: Any, port: int) -> Any:
    """The same settings (same token and cursor secrets) for another instance on ``port``."""
    return settings.model_copy(update={"server": settings.server.model_copy(update={"port": port})})


def store_settings(backend: str, **where: Any) -> StoreSettings:
    """``where``: ``sqlite_path=`` or ``postgres_dsn=`` (the store every process of the run opens)."""
    # lease > the longest drive (2 sends + inquiries, each bounded by the 2.5 s deadline)
    # resend_after 5 s: the proxy's toxics delay a request by 2 s at most (bandwidth 1 KB/s on ~2 KB);
    # the "timeout" toxic drops data rather than delivering it late
    return StoreSettings(backend=backend, reconcile_interval_seconds=0.5, stale_after_seconds=3.0, lease_seconds=15.0,
                         resend_after_seconds=5.0, **where)


# -- the bank -----------------------------------------------------------------------------------------
def _pick_accounts(ledger: Any, n: int) -> tuple[str, dict[str, str]]:
    """``n`` open accounts of the best-populated currency with decimals -> (currency, {account: owner})."""
    rows = ledger.query("SELECT ACCT_NO, CUST_NO, CURR_CD, AVAIL_BAL FROM ACCTMAST WHERE ACCT_STAT = 'A' "
                        "ORDER BY ACCT_NO")
    by_ccy: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["CURR_CD"] != "JPY" and r["AVAIL_BAL"] > 0:
            by_ccy.setdefault(r["CURR_CD"], []).append(r)
    ccy, found = max(by_ccy.items(), key=lambda kv: len(kv[1]))
    assert len(found) >= n, f"the seed has only {len(found)} open {ccy} accounts, {n} wanted"
    return ccy, {r["ACCT_NO"].strip(): r["CUST_NO"].strip() for r in found[:n]}


@dataclass
class Op:
    key: str
    owner: str
    src: str
    dst: str
    amount: Decimal
    refs: set[str] = field(default_factory=set)
    seen: list[int] = field(default_factory=list)  # every HTTP status the client got
    definite: str | None = None  # "posted"/"rejected" as answered to the POST (201/422)
    final: str | None = None  # the end state: definite, or what the status URL finally said
    via_202: bool = False
    lost: int = 0  # requests that ended in a client timeout or a transport error


class Bank:
    """Clients over ``facades`` (instances sharing one store and secrets): each request goes to any of them."""

    def __init__(self, facades: Sequence[Facade], mock: MockMainframe, ccy: str, owners: dict[str, str],
                 think_s: float = THINK_S) -> None:
        self.facades, self.mock, self.ccy, self.owners, self.think_s = list(facades), mock, ccy, owners, think_s
        self.accounts = sorted(owners)
        self.pick = random.Random(f"{SEED}|instance")  # which instance serves a request (shared, under lock)
        self.served: Counter = Counter()
        self.tokens = {c: mint_demo_token(self.facades[0].settings.auth, c, DEMO_SCOPES, ttl=4 * 3600)
                       for c in set(owners.values())}
        self.ops: list[Op] = []
        self.lock = threading.Lock()
        self.negative_reads: list[str] = []
        self.unbalanced_reads: list[str] = []
        self.reads = 0
        self.errors: list[str] = []

    def headers(self, op: Op) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[op.owner]}", "Idempotency-Key": op.key}

    # one POST/GET with the client's timeout; None on a transport error or timeout
    def _call(self, http: httpx.Client, method: str, path: str, op: Op, **kw: Any) -> httpx.Response | None:
        with self.lock:
            facade = self.pick.choice(self.facades) if len(self.facades) > 1 else self.facades[0]
            self.served[facade.name] += 1
        try:
            r = http.request(method, facade.url + path, headers=self.headers(op), **kw)
        except httpx.HTTPError:
            op.lost += 1
            return None
        op.seen.append(r.status_code)
        try:
            body = r.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("reference"), str):
            op.refs.add(body["reference"])
        return r

    def transfer(self, http: httpx.Client, op: Op, rng: random.Random, patience: float) -> None:
        """POST with the same key until 201/422, or 202 (then poll the status URL a while)."""
        body = {"from_account": op.src, "to_account": op.dst, "amount": str(op.amount), "currency": self.ccy,
                "memo": "CHAOS BANK"}
        deadline = time.monotonic() + patience
        delay = 0.05
        while time.monotonic() < deadline:
            r = self._call(http, "POST", "/v1/transfers", op, json=body)
            if r is not None and r.status_code in (201, 422):
                if r.status_code == 422 and "reason_code" not in r.json():
                    self.errors.append(f"{op.key}: 422 that is not a core rejection: {r.text[:300]}")
                op.definite = op.final = "posted" if r.status_code == 201 else "rejected"
                return
            if r is not None and r.status_code == 202:
                op.via_202 = True
                self.poll(http, op, POLL_202_S)
                return
            if r is not None and r.status_code not in RETRYABLE:
                self.errors.append(f"{op.key}: unexpected {r.status_code}: {r.text[:300]}")
                return
            time.sleep(delay * (0.5 + rng.random()))
            delay = min(delay * 2, 1.0)

    def poll(self, http: httpx.Client, op: Op, patience: float) -> None:
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline and op.refs:
            r = self._call(http, "GET", f"/v1/transfers/{sorted(op.refs)[0]}", op)
            if r is not None and r.status_code == 200 and r.json().get("status") in ("posted", "rejected"):
                op.final = r.json()["status"]
                return
            time.sleep(0.3)

    def balance_read(self, http: httpx.Client, op: Op) -> None:
        r = self._call(http, "GET", f"/v1/accounts/{op.src}/balance", op)
        if r is not None and r.status_code == 200 and Decimal(r.json()["available"]["amount"]) < 0:
            self.negative_reads.append(f"facade read of a source account: {r.json()['available']['amount']}")

    def client(self, idx: int, count: int) -> None:
        rng = random.Random(f"{SEED}|client|{idx}")
        with httpx.Client(timeout=CLIENT_TIMEOUT) as http:
            for i in range(count):
                src = rng.choice(self.accounts)
                dst = rng.choice([a for a in self.accounts if a != src])
                amount = (Decimal("99999999.00") if rng.random() < REJECT_SHARE
                          else Decimal(rng.randint(1, 5000)) / 100)
                op = Op(key=str(uuid.UUID(int=rng.getrandbits(128))), owner=self.owners[src], src=src, dst=dst,
                        amount=amount)
                with self.lock:
                    self.ops.append(op)
                self.transfer(http, op, rng, TRANSFER_PATIENCE)
                if rng.random() < 0.1:
                    self.balance_read(http, op)
                time.sleep(rng.uniform(0, 2 * self.think_s))

    def monitor(self, stop: threading.Event, totals: dict[str, tuple[Decimal, Decimal]]) -> None:
        """Reads the ledger all along: totals conserved, no negative available balance."""
        while not stop.wait(0.25):
            self.check_ledger(totals)

    def check_ledger(self, totals: dict[str, tuple[Decimal, Decimal]]) -> None:
        now = self.mock.ledger.balance_totals()
        self.reads += 1
        if now != totals:
            self.unbalanced_reads.append(f"{now} != {totals}")
        rows = self.mock.ledger.query("SELECT ACCT_NO, AVAIL_BAL FROM ACCTMAST WHERE CURR_CD = ?", (self.ccy,))
        neg = [r for r in rows if r["ACCT_NO"].strip() in self.owners and r["AVAIL_BAL"] < 0]
        if neg:
            self.negative_reads.append(f"{len(neg)} account(s) with a negative available balance in the ledger")


FAULTS = ("quiet", "latency", "timeout", "reset_peer", "limit_data", "slow_close", "bandwidth")


def _apply_fault(fp: FaultProxy, kind: str, rng: random.Random) -> None:
    stream = rng.choice(("upstream", "downstream"))
    if kind == "latency":
        fp.add_toxic("soap", "latency", name="f", stream=stream, latency=500, jitter=250)
    elif kind == "timeout":
        fp.add_toxic("soap", "timeout", name="f", stream=stream, toxicity=0.5, timeout=rng.choice((0, 1500)))
    elif kind == "reset_peer":
        fp.add_toxic("soap", "reset_peer", name="f", stream=stream, toxicity=0.4, timeout=rng.choice((0, 200)))
    elif kind == "limit_data":  # cuts the reply (or the request) part way
        fp.add_toxic("soap", "limit_data", name="f", stream=stream, toxicity=0.5, bytes=rng.randint(64, 900))
    elif kind == "slow_close":
        fp.add_toxic("soap", "slow_close", name="f", stream="downstream", delay=rng.randint(300, 1500))
    elif kind == "bandwidth":
        fp.add_toxic("soap", "bandwidth", name="f", stream="downstream", rate=rng.choice((1, 2, 5)))


def _chaos(fp: FaultProxy, facade: Facade, stop: threading.Event, applied: Counter, restart_at: float) -> None:
    rng = random.Random(f"{SEED}|faults")
    started = time.monotonic()
    restarted = False
    while not stop.is_set():
        fp.reset()
        kind = rng.choice(FAULTS)
        _apply_fault(fp, kind, rng)
        applied[kind] += 1
        if not restarted and time.monotonic() - started >= restart_at:
            facade.restart()  # SIGKILL, then a new process: clients see refused connections and retry their keys
            applied["facade_kill_restart"] += 1
            restarted = True
        stop.wait(PHASE_S)
    fp.reset()



# -- the test -----------------------------------------------------------------------------------------
def run_bank(mock: MockMainframe, proxy: FaultProxy, facades: Sequence[Facade], *, accounts: int = ACCOUNTS,
             clients: int = CLIENTS, transfers: int = TRANSFERS, think_s: float = THINK_S,
             restart_at: float = 30.0 if FULL else 8.0, label: str = "chaos bank") -> None:
    """Run the bank against ``facades`` (the first is killed with SIGKILL and started again once, at
    ``restart_at`` s) and check the invariants; ``clients`` threads make ``transfers`` transfers in all."""
    print(f"\n{label}: CHAOS_SEED={SEED} scale={'full' if FULL else 'ci'} accounts={accounts} "
          f"clients={clients} transfers={transfers} facades={len(facades)}", flush=True)
    why = f"(replay with CHAOS_SEED={SEED})"
    ledger = mock.ledger
    ccy, owners = _pick_accounts(ledger, accounts)
    before = {a: ledger.account(a)["AVAIL_BAL"] for a in owners}
    totals = ledger.balance_totals()
    last_id = ledger.query("SELECT COALESCE(MAX(XFER_ID), 0) AS M FROM XFERLOG")[0]["M"]
    bank = Bank(facades, mock, ccy, owners, think_s)
    t0 = time.monotonic()

    mock.faults.set_rules([FaultRule(face="soap", operation="FundsTransfer", drop_response_rate=0.05)], seed=SEED)
    stop_chaos, stop_monitor = threading.Event(), threading.Event()
    applied: Counter = Counter()
    monitor = threading.Thread(target=bank.monitor, args=(stop_monitor, totals), daemon=True)
    chaos = threading.Thread(target=_chaos, args=(proxy, facades[0], stop_chaos, applied, restart_at),
                             daemon=True)
    per = [transfers // clients + (1 if i < transfers % clients else 0) for i in range(clients)]
    clients = [threading.Thread(target=bank.client, args=(i, n), daemon=True) for i, n in enumerate(per)]
    monitor.start()
    chaos.start()
    for c in clients:
        c.start()
    for c in clients:
        c.join(3600 if FULL else 600)
    assert not any(c.is_alive() for c in clients), f"clients still running {why}"
    stop_chaos.set()
    chaos.join(60)
    drops = mock.faults.counts.copy() if isinstance(mock.faults.counts, dict) else {}
    mock.faults.clear()
    t_faults = time.monotonic() - t0

    # the faults are over: every open outcome resolves via the reconciler and the status URL
    settle_deadline = time.monotonic() + SETTLE_S
    with httpx.Client(timeout=5.0) as http:
        for op in bank.ops:
            while op.final is None and time.monotonic() < settle_deadline:
                if op.via_202:  # told 202: the status URL is the way to the outcome
                    bank.poll(http, op, max(0.0, settle_deadline - time.monotonic()))
                else:  # never got a final answer: the app retries its key once the network is back
                    bank.transfer(http, op, random.Random(op.key), settle_deadline - time.monotonic())
    t_settle = time.monotonic() - t0 - t_faults
    stop_monitor.set()
    monitor.join(10)
    bank.check_ledger(totals)

    ops = bank.ops
    posted = [o for o in ops if o.final == "posted"]
    rejected = [o for o in ops if o.final == "rejected"]
    via_202 = [o for o in ops if o.via_202]
    statuses = Counter(s for o in ops for s in o.seen)
    print(f"{label}: {len(ops)} transfers in {t_faults:.1f} s under faults + {t_settle:.1f} s settling; "
          f"{len(posted)} posted, {len(rejected)} rejected, {len(via_202)} answered 202 (resolved "
          f"{sum(o.final is not None for o in via_202)}), definite at once {sum(o.definite is not None for o in ops)}; "
          f"HTTP statuses {dict(sorted(statuses.items()))}, "
          f"timeouts/transport errors {sum(o.lost for o in ops)}; fault phases {dict(applied)}; mock faults {drops}; "
          f"ledger reads {bank.reads}; requests per instance {dict(bank.served)} {why}", flush=True)

    assert not bank.errors, f"{bank.errors[:5]} {why}"
    assert facades[0].kills == 1 and facades[0].starts == 2, f"the facade was not killed and restarted {why}"
    assert len(ops) == transfers
    unresolved = [o.key for o in ops if o.final is None]
    assert not unresolved, f"{len(unresolved)} transfer(s) unresolved {SETTLE_S:.0f} s after the faults {why}"
    # money is conserved and never negative, on every read
    assert not bank.unbalanced_reads, f"money not conserved: {bank.unbalanced_reads[:3]} {why}"
    assert not bank.negative_reads, f"{bank.negative_reads[:3]} {why}"
    # one key -> one reference; one reference -> one key
    multi = [o.key for o in ops if len(o.refs) != 1]
    assert not multi, f"keys answered under 0 or several references: {multi[:5]} {why}"
    refs = Counter(next(iter(o.refs)) for o in ops)
    assert max(refs.values()) == 1, f"references shared by keys: {[r for r, n in refs.items() if n > 1][:5]} {why}"
    # what the clients were told is what the core holds: posted exactly once, rejected never
    wrong = []
    for o in ops:
        ref = next(iter(o.refs))
        postings = [r for r in ledger.transfers_by_ref(ref) if r["XFER_STAT"] == "P"]
        want = 1 if o.final == "posted" else 0
        if len(postings) != want or (o.definite is not None and o.definite != o.final):
            wrong.append(f"{o.key} ref {ref}: told {o.definite}/{o.final}, {len(postings)} posting(s)")
        elif postings and (postings[0]["XFER_AMT"] != o.amount or postings[0]["FROM_ACCT"].strip() != o.src):
            wrong.append(f"{o.key} ref {ref}: posted with another amount or account")
    assert not wrong, f"{len(wrong)} transfer(s) whose core state contradicts the answer: {wrong[:5]} {why}"
    # nothing posted that no client asked for
    ours = set(refs)
    stray = [r["XFER_REF"].strip() for r in ledger.query("SELECT XFER_REF, XFER_STAT FROM XFERLOG WHERE XFER_ID > ?",
                                                         (last_id,))
             if r["XFER_STAT"] == "P" and r["XFER_REF"].strip() not in ours]
    assert not stray, f"postings no client asked for: {stray[:5]} {why}"
    # every balance moved by exactly the transfers the clients were told were posted
    delta = dict.fromkeys(owners, Decimal("0.00"))
    for o in posted:
        delta[o.src] -= o.amount
        delta[o.dst] += o.amount
    moved = {a: ledger.account(a)["AVAIL_BAL"] - before[a] for a in owners}
    assert moved == delta, f"balances moved otherwise than the answers say {why}"
    assert ledger.balance_totals() == totals, f"money not conserved at the end {why}"
