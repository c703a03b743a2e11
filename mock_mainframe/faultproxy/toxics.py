"""Toxics: Toxiproxy's names, attributes and JSON shape, validated here; applied in ``proxy.py``.

A toxic acts on one direction (``stream``): ``upstream`` is client -> server, ``downstream`` is
server -> client. ``toxicity`` is the probability (0..1) that it applies to a given connection;
the draw is made once per connection and toxic (and again when the toxic is updated).

  latency     latency ms, jitter ms   each chunk is delivered latency +- jitter (uniform) ms after
                                      it arrived at the proxy (not cumulative, like Toxiproxy)
  bandwidth   rate KB/s               data is sent in 100 ms slices, sleeping len/rate before each
                                      (1 KB = 1000 bytes; rate 0 = unlimited)
  slow_close  delay ms                when the sending side closes, wait delay ms before passing
                                      the close (FIN) on
  timeout     timeout ms              all data is dropped; after timeout ms the connection is
                                      closed; 0 = drop data and hold the connection until removed
  reset_peer  timeout ms              on the first data, drop it, wait timeout ms, then reset both
                                      sides (SO_LINGER 0 -> RST)
  limit_data  bytes                   pass at most ``bytes`` bytes in this direction, then close
  slicer      average_size, size_variation, delay (microseconds)
                                      split each chunk into pieces of average_size +- size_variation
                                      bytes (at least 1) with ``delay`` us between the pieces
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STREAMS = ("upstream", "downstream")

#: type -> attribute defaults (every attribute is a number >= 0)
TOXIC_TYPES: dict[str, dict[str, int]] = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "limit_data": {"bytes": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
}

class ProxyError(ValueError):
    """A request that cannot be honoured; ``status`` is the HTTP status it maps to."""

    status = 400


class BadRequest(ProxyError):
    status = 400


class NotFound(ProxyError):
    status = 404


class Conflict(ProxyError):
    status = 409


def _number(name: str, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise BadRequest(f"attribute {name!r} must be a number >= 0, got {value!r}")
    return value


def _toxicity(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise BadRequest(f"toxicity must be a number between 0 and 1, got {value!r}")
    return float(value)


def _attributes(type_: str, given: Any, base: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(given, dict):
        raise BadRequest("attributes must be a JSON object")
    known = TOXIC_TYPES[type_]
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise BadRequest(f"unknown attribute(s) {unknown} for toxic type {type_!r}; known: {sorted(known)}")
    attrs = {**base, **{k: _number(k, v) for k, v in given.items()}}
    if type_ == "slicer" and attrs["average_size"] < 1:
        raise BadRequest("attribute 'average_size' must be >= 1 for a slicer")
    return attrs


@dataclass(frozen=True, eq=False)
class Toxic:
    """One toxic. Immutable: an update makes a new one (so its toxicity is drawn afresh)."""

    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, type: str, *, name: str | None = None, stream: str = "downstream",
               toxicity: float = 1.0, attributes: dict[str, Any] | None = None) -> Toxic:
        if type not in TOXIC_TYPES:
            raise BadRequest(f"type {type!r} is not a known toxic type; known: {sorted(TOXIC_TYPES)}")
        if stream not in STREAMS:
            raise BadRequest(f"stream {stream!r} must be 'upstream' or 'downstream'")
        if name is None:
            name = f"{type}_{stream}"
        if not isinstance(name, str) or not name or "/" in name:
            raise BadRequest(f"name must be a non-empty string without '/', got {name!r}")
        attrs = _attributes(type, attributes or {}, dict(TOXIC_TYPES[type]))
        return cls(name=name, type=type, stream=stream, toxicity=_toxicity(toxicity), attributes=attrs)

    @classmethod
    def from_json(cls, data: Any) -> Toxic:
        if not isinstance(data, dict):
            raise BadRequest("a toxic must be a JSON object {name, type, stream, toxicity, attributes}")
        unknown = sorted(set(data) - {"name", "type", "stream", "toxicity", "attributes"})
        if unknown:
            raise BadRequest(f"unknown field(s) {unknown} in toxic")
        if "type" not in data:
            raise BadRequest(f"type is required; one of {sorted(TOXIC_TYPES)}")
        return cls.create(data["type"], name=data.get("name"), stream=data.get("stream", "downstream"),
                          toxicity=data.get("toxicity", 1.0), attributes=data.get("attributes", {}))

    def updated(self, data: Any) -> Toxic:
        """Toxiproxy's POST /proxies/{p}/toxics/{t}: change toxicity and/or attributes."""
        if not isinstance(data, dict):
            raise BadRequest("a toxic update must be a JSON object {toxicity, attributes}")
        for key in ("name", "type", "stream"):
            if key in data and data[key] != getattr(self, key):
                raise BadRequest(f"{key} of a toxic cannot be changed (delete and re-create it)")
        unknown = sorted(set(data) - {"name", "type", "stream", "toxicity", "attributes"})
        if unknown:
            raise BadRequest(f"unknown field(s) {unknown} in toxic")
        attrs = _attributes(self.type, data.get("attributes", {}), dict(self.attributes))
        return Toxic(name=self.name, type=self.type, stream=self.stream,
                     toxicity=_toxicity(data.get("toxicity", self.toxicity)), attributes=attrs)

    def draw_key(self) -> str:
        """What the per-connection toxicity draw is seeded with (besides seed, proxy, connection)."""
        return f"{self.name}|{self.type}|{self.stream}|{self.toxicity}|{sorted(self.attributes.items())}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "stream": self.stream,
                "toxicity": self.toxicity, "attributes": dict(self.attributes)}
