"""``python -m mock_mainframe.faultproxy --listen 127.0.0.1:8474``: the fault proxy and its HTTP API."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from .proxy import FaultProxy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mock_mainframe.faultproxy", description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:8474", help="HTTP API address (Toxiproxy's default port)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the toxicity and jitter draws")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with FaultProxy(seed=args.seed, api_listen=args.listen) as fp:
        print(f"fault proxy API on {fp.api_url}", flush=True)
        while not stop.wait(0.25):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
