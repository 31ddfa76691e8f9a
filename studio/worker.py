"""A run computed in a thread of its own, ahead of the page's stream.

When each iteration waited for the stream to draw, encode and send the frame before it, a
1-point run in the app took about twice as long as in the library (BENCHMARKS.md, issue
22). :class:`RunWorker` pulls the states of a run in a thread of its own and hands each to
the caller's ``keep`` under ``record.progress`` (the run's lock and condition), so the
stream (:func:`studio.run.run_steps`) draws whichever frame is newest when the page asks.
It stops at once when the run is stopped (``record.stopped``, set under the lock) or the
stream is closed (:meth:`RunWorker.abandon`), and pauses when nobody has asked for a frame
for :data:`AHEAD_S` (a stream that nobody reads any more).

:class:`Background` computes one function meanwhile at a lower CPU priority (the metrics
table's baselines: on a busy CPU the frames go first).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from studio.prefetch import lower_priority

if TYPE_CHECKING:
    from studio.session import RunRecord, RunSummary

__all__ = ["AHEAD_S", "Background", "RunWorker"]

AHEAD_S = 1.0  # the worker computes at most this long after the stream last asked
GIVE_UP_S = 120.0  # and gives up when the stream has not asked for this long
POLL_S = 0.5  # how often a waiting side looks again without being notified


class Background:
    """A function computed in a thread of its own at a lower CPU priority."""

    def __init__(self, function: Callable[[], Any]) -> None:
        self._function = function
        self._result: Any = None
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="studio-background", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        lower_priority()
        try:
            self._result = self._function()
        except Exception as error:  # raised to whoever asks for the result
            self._error = error

    def result(self) -> Any:
        """Wait for the function's value (or raise its exception)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result


class RunWorker:
    """Pulls a run's states in a thread of its own; then its summary.

    Args:
        record: the run; ``record.progress`` guards what ``keep`` changes and is notified
            after each state.
        steps: the run's states (closed when the worker ends, in its thread).
        keep: called with each state, ``record.progress`` held, unless the run is stopped.
        finish: called once the states are exhausted; its value becomes :attr:`summary`.
    """

    def __init__(
        self,
        record: RunRecord,
        steps: Iterator[Any],
        keep: Callable[[Any], None],
        finish: Callable[[float], RunSummary],
    ) -> None:
        self.summary: RunSummary | None = None
        self.error: Exception | None = None
        self.done = False
        self._abandoned = False
        self._asked_at = time.monotonic()
        self._record = record
        self._steps = steps
        self._keep = keep
        self._finish = finish
        self._thread = threading.Thread(target=self._work, name="studio-run", daemon=True)
        self._thread.start()

    def asked(self) -> None:
        """The stream asks for a frame (call with ``record.progress`` held)."""
        self._asked_at = time.monotonic()
        self._record.progress.notify_all()

    def abandon(self) -> None:
        """Stop computing, and wait until the thread has ended (at most one state)."""
        with self._record.progress:
            self._abandoned = True
            self._record.progress.notify_all()
        self._thread.join(timeout=GIVE_UP_S)

    def _may_go_on(self) -> bool:
        """Whether to compute the next state; waits while the stream does not ask."""
        record = self._record
        with record.progress:
            while not (record.stopped or self._abandoned):
                idle = time.monotonic() - self._asked_at
                if idle <= AHEAD_S:
                    return True
                if idle > GIVE_UP_S:
                    return False
                record.progress.wait(POLL_S)
            return False

    def _work(self) -> None:
        record = self._record
        started = time.perf_counter()
        try:
            while self._may_go_on():
                state = next(self._steps, None)
                if state is None:
                    self.summary = self._finish(time.perf_counter() - started)
                    break
                with record.progress:
                    if record.stopped:
                        break
                    self._keep(state)
                    record.progress.notify_all()
        except Exception as error:  # handed to the stream, which raises it on its side
            self.error = error
        finally:
            close = getattr(self._steps, "close", None)
            if close is not None:
                close()
            with record.progress:
                self.done = True
                record.progress.notify_all()
