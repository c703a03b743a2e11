"""A small asyncio TCP fault proxy with Toxiproxy's toxics and HTTP API shape.

Toxiproxy cannot be installed everywhere we test, so this stands in for it; a real Toxiproxy can
replace it later without changing the callers of the HTTP API. See ``toxics`` for what each toxic
does, ``proxy`` for the relay and the Python API (:class:`FaultProxy`), ``api`` for the HTTP API.

    python -m mock_mainframe.faultproxy --listen 127.0.0.1:8474 [--seed 0]
"""

from .proxy import Engine, FaultProxy, Proxy, parse_hostport
from .toxics import STREAMS, TOXIC_TYPES, BadRequest, Conflict, NotFound, ProxyError, Toxic

__all__ = ["STREAMS", "TOXIC_TYPES", "BadRequest", "Conflict", "Engine", "FaultProxy", "NotFound", "Proxy",
           "ProxyError", "Toxic", "parse_hostport"]
