"""How the fast paths are held to the validating path: the same outcome, built the same way."""

from __future__ import annotations

from mappings.copybook import RecordDecodeError
from mappings.engine import MappingApplyError


def outcome(fn, *args):
    """The value, or ``(error class name, message)`` for a mapping or decode error."""
    try:
        return fn(*args)
    except (MappingApplyError, RecordDecodeError) as exc:
        return (type(exc).__name__, str(exc))


def assert_same(got, want):
    """The same object as pydantic builds it: equal, same types, same __dict__ order, same fields set."""
    if isinstance(want, tuple):
        assert got == want
        return
    assert type(got) is type(want) and got == want
    assert list(got.__dict__) == list(want.__dict__)
    assert [type(v) for v in got.__dict__.values()] == [type(v) for v in want.__dict__.values()]
    assert got.__pydantic_fields_set__ == want.__pydantic_fields_set__
    assert type(got.__pydantic_fields_set__) is type(want.__pydantic_fields_set__)
    assert got.__pydantic_extra__ == want.__pydantic_extra__ and got.__pydantic_private__ == want.__pydantic_private__
