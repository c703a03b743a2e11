"""The adapter error tree."""

from __future__ import annotations

import pickle

import pytest

from adapters import errors
from adapters.errors import (
    BackendFault,
    BackendTimeout,
    BackendUnavailable,
    BulkheadFull,
    CircuitOpen,
    ContractViolation,
    CoreError,
    DeadlineExceeded,
    RecordNotFound,
    Rejected,
)

ALL = [BackendUnavailable, BackendTimeout, BackendFault, RecordNotFound, Rejected, CircuitOpen, BulkheadFull,
       DeadlineExceeded, ContractViolation]


def build(cls: type[CoreError]) -> CoreError:
    if cls is Rejected:
        return Rejected(reason_code="51", reason="insufficient funds", backend="soap", operation="PostTransfer")
    if cls is CircuitOpen:
        return CircuitOpen(retry_after=2.5, backend="soap", operation="GetBalance")
    return cls(backend="soap", operation="GetBalance")


@pytest.mark.parametrize("cls", ALL)
def test_every_error_is_a_core_error_carrying_backend_operation_and_outcome(cls) -> None:
    err = build(cls)
    assert isinstance(err, CoreError)
    assert (err.backend, err.outcome_unknown) == ("soap", False)
    assert err.operation in ("GetBalance", "PostTransfer")
    assert str(err).startswith("soap/")
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is cls and clone.__dict__ == err.__dict__ and str(clone) == str(err)


def test_the_tree_is_flat_under_core_error() -> None:
    exported = {getattr(errors, n) for n in errors.__all__} - {CoreError}
    assert exported == set(ALL)
    assert all(c.__bases__ == (CoreError,) for c in ALL)


def test_outcome_unknown_and_details_in_the_message() -> None:
    err = BackendTimeout("no answer after 5s", backend="soap", operation="PostTransfer", outcome_unknown=True)
    assert str(err) == "soap/PostTransfer: no answer after 5s (outcome unknown)"
    rej = build(Rejected)
    assert (rej.reason_code, rej.reason) == ("51", "insufficient funds")
    assert "51 insufficient funds" in str(rej)
    assert "retry after 2.500s" in str(build(CircuitOpen))
    assert str(BackendUnavailable()) == "backend unavailable"


def test_errors_module_references_no_protocol_library() -> None:
    source = open(errors.__file__, encoding="utf-8").read()
    for lib in ("zeep", "paramiko", "pyodbc"):
        assert f"import {lib}" not in source and f"from {lib}" not in source
