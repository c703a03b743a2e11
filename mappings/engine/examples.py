"""Run a mapping file's ``examples:``: legacy input -> expected canonical output, and back.

For every example:

* read: ``mapping.read(input, context)`` dumped as JSON must equal ``output`` (or raise a
  :class:`MappingApplyError` whose text contains ``error``);
* copybook sources: the input is first encoded with the copybook's record codec and decoded
  again, so the mapping sees exactly the types the codec produces (Decimal, int, trimmed text)
  and the example is proven to be a valid record;
* write (mappings whose direction is write or both): ``output`` is validated into the target
  model and written; the legacy dict must equal ``written`` when the example gives it, must
  encode (copybook), and must read back to ``output`` (round trip).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from .compiler import CompiledMapping
from .contracts import FieldInfo
from .errors import MappingApplyError
from .schema import UNSET, Example

__all__ = ["ExampleResult", "coerce_record", "json_legacy", "run_examples"]


@dataclass
class ExampleResult:
    example: Example
    ok: bool
    message: str = ""

    def __str__(self) -> str:
        state = "ok" if self.ok else "FAILED"
        return f"{self.example.name}: {state}" + (f": {self.message}" if self.message else "")


def json_legacy(value: Any) -> Any:
    """A legacy dict as JSON-able data (Decimal -> str) for comparisons and messages."""
    if isinstance(value, dict):
        return {k: json_legacy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_legacy(v) for v in value]
    if isinstance(value, Decimal):
        return f"{value:f}"
    return value


def coerce_record(record: Any, fields: dict[str, FieldInfo]) -> Any:
    """Example YAML -> the Python types a copybook codec takes (decimal text -> Decimal, digits -> int)."""
    if not isinstance(record, dict):
        return record
    out: dict[str, Any] = {}
    for key, value in record.items():
        info = fields.get(key)
        if info is None:
            out[key] = value
        elif info.kind == "group":
            if info.repeated and isinstance(value, list):
                out[key] = [coerce_record(v, info.children) for v in value]
            else:
                out[key] = coerce_record(value, info.children)
        elif info.numeric and isinstance(value, str):
            try:
                number = Decimal(value.strip())
                out[key] = number if info.scale else int(number)
            except ArithmeticError:
                out[key] = value
        else:
            out[key] = value
    return out


def _diff(expected: Any, got: Any) -> str:
    if isinstance(expected, dict) and isinstance(got, dict):
        lines = []
        for key in sorted(set(expected) | set(got)):
            e, g = expected.get(key, "<absent>"), got.get(key, "<absent>")
            if e != g:
                lines.append(f"{key}: expected {json.dumps(e, default=str)}, got {json.dumps(g, default=str)}")
        return "; ".join(lines)
    return f"expected {json.dumps(expected, default=str)}, got {json.dumps(got, default=str)}"


def _through_codec(mapping: CompiledMapping, record: Any, what: str) -> Any:
    fields = mapping.binding.root.fields if mapping.binding.root is not None else {}
    codec = mapping.codec()
    data = codec.encode(coerce_record(record, fields), fill_missing=True)
    try:
        return codec.decode(data)
    except Exception as exc:  # noqa: BLE001 - reported as the example's failure
        raise ValueError(f"{what} does not decode with the copybook codec: {exc}") from exc


def run_example(mapping: CompiledMapping, ex: Example) -> ExampleResult:
    copybook = mapping.source_kind == "copybook"
    record = ex.input
    context = ex.context
    if copybook and isinstance(context, dict):
        context = {k: coerce_record(v, mapping.binding.contexts[k].fields) if k in mapping.binding.contexts else v
                   for k, v in context.items()}
    try:
        if copybook:
            record = _through_codec(mapping, record, "input")
    except Exception as exc:  # noqa: BLE001 - any codec complaint fails the example
        return ExampleResult(ex, False, f"input is not a valid {mapping.spec.source.contract.get('record')} "
                                        f"record: {exc}")
    try:
        obj = mapping.read(record, context)
    except MappingApplyError as exc:
        if ex.error is not None and ex.error in str(exc):
            return ExampleResult(ex, True)
        if ex.error is not None:
            return ExampleResult(ex, False, f"expected an error containing {ex.error!r}, got: {exc}")
        return ExampleResult(ex, False, str(exc))
    if ex.error is not None:
        return ExampleResult(ex, False, f"expected an error containing {ex.error!r}, but it mapped")
    got = obj.model_dump(mode="json")
    if got != ex.output:
        return ExampleResult(ex, False, "read: " + _diff(ex.output, got))
    if not mapping.writable:
        return ExampleResult(ex, True)
    # write, then read back
    try:
        canonical = mapping.model.model_validate(ex.output)
        legacy = mapping.write(canonical)
    except (MappingApplyError, ValidationError) as exc:
        return ExampleResult(ex, False, f"write: {exc}")
    if ex.written is not UNSET and json_legacy(legacy) != ex.written:
        return ExampleResult(ex, False, "write: " + _diff(ex.written, json_legacy(legacy)))
    try:
        back_record = _through_codec(mapping, legacy, "the written record") if copybook else legacy
        back = mapping.read(back_record, context).model_dump(mode="json")
    except Exception as exc:  # noqa: BLE001 - reported as the example's failure
        return ExampleResult(ex, False, f"round trip: {exc}")
    if back != ex.output:
        return ExampleResult(ex, False, "round trip: " + _diff(ex.output, back))
    return ExampleResult(ex, True)


def run_examples(mapping: CompiledMapping) -> list[ExampleResult]:
    return [run_example(mapping, ex) for ex in mapping.spec.examples]
