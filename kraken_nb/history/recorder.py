"""The recorder handle: a tap on the session, a writer thread, and what went wrong if anything did.

:class:`Recorder` attaches a :class:`~kraken_nb.history.tap.HistoryTap` to a
session, then rolls: every ``roll_seconds`` (or as soon as ``roll_rows`` rows
are pending) it takes the pending rows under the session's lock and writes
them as part files outside it, on its own thread (never the network thread).
``background=False`` rolls only when :meth:`Recorder.poll` or
:meth:`Recorder.roll` is called, on the caller's thread, with the caller's
clock: ``kraken-nb convert`` feeds a recording this way, rolling on the
recorded receive times.

A write that fails (a full disk, a folder made unwritable) stops the
recorder: ``state`` becomes ``failed``, ``error`` holds the
:class:`~kraken_nb.errors.DatasetError`, the failure is logged, the rows that
could not be written are counted in ``stats()["rows_lost"]`` and
:meth:`Recorder.stop` raises the error.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from contextlib import AbstractContextManager
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd

from kraken_nb.core.session import Session
from kraken_nb.errors import DatasetError, InvalidParams
from kraken_nb.history.files import DatasetLock, PartWriter
from kraken_nb.history.layout import TABLES
from kraken_nb.history.resume import prior_state
from kraken_nb.history.tables import tables_of
from kraken_nb.history.tap import HistoryTap

__all__ = ["DEFAULT_ROLL_ROWS", "DEFAULT_ROLL_SECONDS", "Recorder"]

log = logging.getLogger(__name__)

DEFAULT_ROLL_SECONDS = 300.0
"""Seconds between rolls: at most this much is lost when the recorder is killed."""
DEFAULT_ROLL_ROWS = 100_000
"""Pending rows that start a roll before its time."""


class Recorder:
    """Records what ``session`` accepts into the Parquet dataset at ``directory`` until :meth:`stop`.

    ``lock`` is the lock that serialises the session (the client's); the
    recorder takes it only to attach and to take the pending rows. One
    recorder may own a folder at a time, and a session has one recorder at a
    time (``DatasetError`` otherwise). A folder that cannot be created or
    written is a ``DatasetError`` here and now.
    """

    def __init__(
        self,
        session: Session,
        directory: str | PathLike[str],
        *,
        lock: AbstractContextManager[Any] | None = None,
        roll_seconds: float = DEFAULT_ROLL_SECONDS,
        roll_rows: int = DEFAULT_ROLL_ROWS,
        background: bool = True,
    ) -> None:
        if (
            isinstance(roll_seconds, bool)
            or not isinstance(roll_seconds, int | float)
            or not roll_seconds > 0
        ):
            raise InvalidParams("roll_seconds", roll_seconds, "a number of seconds > 0")
        if not math.isfinite(roll_seconds):
            raise InvalidParams("roll_seconds", roll_seconds, "a finite number of seconds")
        if isinstance(roll_rows, bool) or not isinstance(roll_rows, int) or roll_rows < 1:
            raise InvalidParams("roll_rows", roll_rows, "an int >= 1")
        self.directory = Path(directory)
        self.roll_seconds = float(roll_seconds)
        self.roll_rows = roll_rows
        self.state = "recording"
        """``recording``, ``stopped`` or ``failed``."""
        self.error: DatasetError | None = None
        """Why the recorder failed (``state == "failed"``), else None."""
        self.rolls = 0
        self.last_roll: pd.Timestamp | None = None
        self._lock = lock if lock is not None else threading.RLock()
        self._writing = threading.Lock()
        self._due = threading.Event()
        self._stopping = False
        self._last_poll_ns: int | None = None
        self._owner = DatasetLock(self.directory)
        try:
            prior = prior_state(self.directory)
            self._parts = PartWriter(self.directory)
            self._tap = HistoryTap(session, prior, roll_rows=roll_rows, due=self._due.set)
            with self._lock:
                self._tap.attach()
        except BaseException:
            self._owner.release()
            raise
        self._buffers = {"trades": session.trades, "ticker": session.tickers, "candles": session.candles}
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="kraken-nb-recorder", daemon=True)
            self._thread.start()
        log.info("recording to %s (rolls every %g s or %d rows)", self.directory, roll_seconds, roll_rows)

    # -- rolling ------------------------------------------------------------------

    def roll(self) -> None:
        """Write what is pending now (the writer thread does so by itself); raises if the recorder failed."""
        with self._writing:
            if self.error is not None:
                raise self.error
            with self._lock:
                pending = self._tap.take()
            if not pending:
                return
            written = 0
            try:
                for table, symbol, day, rows in tables_of(pending, self._buffers):
                    self._parts.write(table, symbol, day, rows)
                    written += rows.num_rows
            except DatasetError as exc:
                self._fail(exc, pending.rows - written)
                raise
            except Exception as exc:  # a bug turning rows into tables: stop, loudly
                error = DatasetError(f"could not write to {self.directory}: {type(exc).__name__}: {exc}")
                error.__cause__ = exc
                self._fail(error, pending.rows - written)
                raise error from exc
            self.rolls += 1
            self.last_roll = pd.Timestamp.now(tz="UTC")

    def poll(self, now_ns: int) -> None:
        """Roll if ``roll_seconds`` passed since the last roll (by ``now_ns``) or enough rows are pending.

        For ``background=False``: call it after each frame with that frame's
        receive time.
        """
        if self._last_poll_ns is None:
            self._last_poll_ns = now_ns
        elif (
            now_ns - self._last_poll_ns >= self.roll_seconds * 1e9 or self._tap.pending_rows >= self.roll_rows
        ):
            self._last_poll_ns = now_ns
            self.roll()

    def _run(self) -> None:
        deadline = time.monotonic() + self.roll_seconds
        while True:
            self._due.wait(max(0.0, deadline - time.monotonic()))
            self._due.clear()
            stopping = self._stopping
            if stopping or time.monotonic() >= deadline or self._tap.pending_rows >= self.roll_rows:
                try:
                    self.roll()
                except DatasetError:
                    return  # failed: reported by _fail
                deadline = time.monotonic() + self.roll_seconds
            if stopping:
                return

    def _fail(self, error: DatasetError, lost: int) -> None:
        with self._lock:
            self._tap.detach()
            self._tap.counters["rows_lost"] += lost
        self.error = error
        self.state = "failed"
        log.error("recording to %s stopped: %s (%d rows not written)", self.directory, error, lost)

    # -- lifecycle ------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop recording and write what is pending; raise the ``DatasetError`` that stopped it, if any.

        Idempotent; once failed, every call raises the error again.
        """
        if not self._stopping:
            self._stopping = True
            with self._lock:
                self._tap.detach()
            if self._thread is not None:
                self._due.set()
                self._thread.join()
            elif self.error is None:
                with contextlib.suppress(DatasetError):  # kept in self.error, raised below
                    self.roll()
            if self.state == "recording":
                self.state = "stopped"
            self._owner.release()
            log.info("recording to %s %s", self.directory, self.state)
        if self.error is not None:
            raise self.error

    @property
    def running(self) -> bool:
        """Whether the recorder still records."""
        return self.state == "recording"

    def stats(self) -> dict[str, Any]:
        """``state``, ``error``, ``rolls``, ``files``, ``bytes``, ``pending_rows``, ``rows`` per table,
        ``skipped_recorded`` (rows an earlier run had recorded) and ``rows_lost``."""
        with self._lock:
            counters = dict(self._tap.counters)
            pending = self._tap.pending_rows
        return {
            "state": self.state,
            "error": None if self.error is None else str(self.error),
            "directory": str(self.directory),
            "rolls": self.rolls,
            "last_roll": self.last_roll,
            "files": self._parts.files,
            "bytes": self._parts.bytes,
            "pending_rows": pending,
            "rows": {table: counters.get("rows_" + table, 0) for table in TABLES},
            "skipped_recorded": counters.get("skipped_recorded", 0),
            "rows_lost": counters.get("rows_lost", 0),
        }

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.stop()
            return
        try:
            self.stop()
        except DatasetError:
            log.debug("recorder error while another exception propagates", exc_info=True)

    def __repr__(self) -> str:
        return f"<Recorder {self.directory} {self.state}, {self._parts.files} files>"
