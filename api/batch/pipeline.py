"""Run a generator in a forked child process and iterate over its items in the parent.

Why: decoding + mapping a TXNHIST file and inserting its rows both hold the GIL (threads do not
overlap them); a child that decodes while the parent inserts uses a second core. Fork, not spawn:
the child inherits the compiled codecs, so it starts in milliseconds with nothing to re-import.

The child only runs the generator and sends its items, pickled, through a pipe (which bounds how far
it runs ahead); it never touches the store, so the parent keeps its one transaction. An exception
raised in the child is raised again in the parent; a child that dies (killed, out of memory) raises
:class:`ChildDied`; leaving the ``with`` block early kills the child.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
import pickle
import traceback
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX: no fork either (can_fork)
    fcntl = None  # type: ignore[assignment]

__all__ = ["ChildDied", "can_fork", "in_child"]

_ITEM, _DONE, _RAISE = 0, 1, 2
PIPE_BYTES = 1 << 20
STALL_SECONDS = 300.0  # a child silent this long is stuck (a piece takes milliseconds): give up on it


class ChildDied(RuntimeError):
    """The child process ended without finishing (killed, crashed, or its exception could not be sent)."""


def can_fork() -> bool:
    """True where a forked child is available (POSIX with fork; not inside a daemonic process)."""
    return "fork" in mp.get_all_start_methods() and not mp.current_process().daemon


def _run(fn: Callable[..., Iterable[Any]], args: tuple[Any, ...], conn: Connection, parent_end: Connection) -> None:
    """The child: send every item, then DONE, or the exception (as itself if it round-trips pickle, else as text)."""
    parent_end.close()  # else a parent that dies leaves us writing into a pipe we read ourselves, forever
    # the collector leaves what we inherited alone: no finalizer of an inherited object (a store connection in a
    # garbage cycle) runs here, on the parent's socket or file, and no copy-on-write of the parent's heap
    gc.freeze()
    try:
        try:
            for item in fn(*args):
                if not _send(conn, (_ITEM, item)):
                    return  # the parent stopped listening
            last: tuple[int, Any] = (_DONE, None)
        except BaseException as exc:  # noqa: BLE001 - every failure goes to the parent
            failure: BaseException = exc
            try:
                pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes
            except Exception:  # noqa: BLE001 - it would not arrive whole: send its text
                failure = ChildDied("".join(traceback.format_exception(exc)))
            last = (_RAISE, failure)
        _send(conn, last)
    finally:
        conn.close()


def _send(conn: Connection, message: tuple[int, Any]) -> bool:
    try:
        conn.send(message)
    except OSError:  # broken pipe: the parent is gone or closed its end
        return False
    return True


def _receive(conn: Connection, proc: Any) -> Iterator[Any]:
    while True:
        try:
            if not conn.poll(STALL_SECONDS):
                raise ChildDied(f"the {proc.name} process sent nothing for {STALL_SECONDS} s")
            tag, value = conn.recv()
        except EOFError:
            proc.join(5)
            raise ChildDied(f"the {proc.name} process ended early (exit code {proc.exitcode})") from None
        if tag == _ITEM:
            yield value
        elif tag == _RAISE:
            raise value
        else:
            return


@contextlib.contextmanager
def in_child(fn: Callable[..., Iterable[Any]], *args: Any, name: str = "worker") -> Iterator[Iterator[Any]]:
    """``fn(*args)``'s items, produced in a forked child; the child is gone when the block ends."""
    ctx = mp.get_context("fork")
    reader, writer = ctx.Pipe(duplex=False)
    with contextlib.suppress(AttributeError, OSError):  # Linux: room for the child to run ahead (default 64 KiB)
        fcntl.fcntl(writer.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)  # type: ignore[attr-defined]
    proc = ctx.Process(target=_run, args=(fn, args, writer, reader), name=name, daemon=True)
    try:
        proc.start()
    finally:
        writer.close()  # the child holds its own copy: EOF here means the child is gone
    try:
        yield _receive(reader, proc)
    finally:
        reader.close()
        if proc.is_alive():
            proc.kill()
        proc.join()
        proc.close()
