"""Work a run will need, started when the points change, before Refine is pressed.

The guidance feature G (eq. 3) and the metrics table's baselines depend only on the image,
D0 and the sparse depth S, which are known as soon as the plan is shown. With them computed
while the user looks at the plan, a 100-point run in the app waits only for the MSPN
iterations: Refine -> complete page went from about 1.5 s to about 1.1 s on the 2-core
machine of BENCHMARKS.md (issue 22; G alone is most of it).

A :class:`Prefetch` starts after :data:`PREFETCH_DELAY_S` (a new click in the meantime
replaces it before it has cost anything), runs at a lower CPU priority, and is used only
by a run on the very same inputs (:meth:`PrefetchSlot.take`); anything else computes as
before. G is prefetched on CPU only (on a GPU the guidance network is fast, and a ZeroGPU
Space has the GPU only inside a run) and for images up to :data:`PREFETCH_MAX_PIXELS`, so a
session holds at most about 32 MiB of it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import TYPE_CHECKING

import numpy as np

from sdr_core import methods
from studio.scene import Scene

if TYPE_CHECKING:
    import torch

    from sdr_core.pipeline import SDRPipeline

__all__ = [
    "PREFETCH_DELAY_S",
    "PREFETCH_MAX_PIXELS",
    "Prefetch",
    "PrefetchSlot",
    "baseline_predictions",
    "lower_priority",
]

PREFETCH_DELAY_S = 0.3  # quiet time after a change before the work starts
PREFETCH_MAX_PIXELS = 131_072  # G (64 float32 channels) of larger images is not prefetched
BACKGROUND_NICE = 10  # how much lower the studio's background threads run


def lower_priority() -> None:
    """Run the calling thread at :data:`BACKGROUND_NICE` (Linux; elsewhere as is).

    Every background computation of the studio (this module's, and
    :class:`studio.worker.Background`) runs so: on a busy CPU the frames go first.
    """
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


def baseline_predictions(
    pipeline: SDRPipeline, scene: Scene, sparse: np.ndarray, schedule_points: int
) -> dict[str, np.ndarray]:
    """Every baseline of the method table on a run's inputs (no network runs)."""
    inputs = methods.MethodInputs(scene.image, sparse, scene.init_depth, schedule_points)
    return methods.predict(methods.BASELINES, pipeline, inputs)


class Prefetch:
    """G and the baselines of one scene and sparse depth, computed in a thread of their own.

    Args:
        pipeline: the shared, read-only pipeline.
        scene: the scene (its image and D0); matched by identity.
        sparse: the sparse depth S as the run will use it (after the hole).
        schedule_points: s of eq. 13 (the baselines' input, as the run's).
        delay_s: quiet time before the work starts; :meth:`claim` or :meth:`cancel` before
            then and nothing is computed.
    """

    def __init__(
        self,
        pipeline: SDRPipeline,
        scene: Scene,
        sparse: np.ndarray,
        schedule_points: int,
        delay_s: float = PREFETCH_DELAY_S,
    ) -> None:
        self.scene = scene
        self.sparse = np.array(sparse, dtype=np.float32, copy=True)
        self.schedule_points = schedule_points
        self.has_guidance = (
            pipeline.device.type == "cpu" and self.sparse.size <= PREFETCH_MAX_PIXELS
        )
        self.has_baselines = scene.gt is not None
        self._pipeline = pipeline
        self._delay_s = delay_s
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._started = False
        self._claimed = False  # a run waits for the results: they are all computed
        self._guidance: torch.Tensor | None = None
        self._baselines: dict[str, np.ndarray] | None = None
        self._error: Exception | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="studio-prefetch", daemon=True)
        self._thread.start()

    def matches(self, scene: Scene, sparse: np.ndarray) -> bool:
        """Whether this prefetch is for ``scene`` (the same object) and exactly ``sparse``."""
        return (
            scene is self.scene
            and sparse.shape == self.sparse.shape
            and bool(np.array_equal(sparse, self.sparse))
        )

    def done(self) -> bool:
        """Whether the work has ended (finished, failed or cancelled before it began)."""
        return self._done.is_set()

    def cancel(self) -> None:
        """Compute nothing more that has not begun, unless a run has claimed the results."""
        with self._lock:
            if not self._claimed:
                self._cancelled.set()

    def claim(self) -> bool:
        """Keep the results for a run: True once the work has begun, False if it had not.

        After True, :meth:`guidance` and :meth:`baselines` wait for the results, and
        :meth:`cancel` no longer stops the work (a run waits for it); after False the
        prefetch is cancelled and computes nothing.
        """
        with self._lock:
            if self._started:
                self._claimed = True
                return True
            self._cancelled.set()
            return False

    def guidance(self) -> torch.Tensor:
        """G for the inputs, waiting for it (only when :attr:`has_guidance`).

        Raises:
            RuntimeError: cancelled before it began, or not prefetched.
            Exception: what the computation raised.
        """
        self._done.wait()
        return self._result(self._guidance, "guidance")

    def baselines(self) -> dict[str, np.ndarray]:
        """The baselines' predictions, waiting for them (only when :attr:`has_baselines`)."""
        self._done.wait()
        return self._result(self._baselines, "baselines")

    def _result(self, value: object, what: str) -> object:
        if self._error is not None:
            raise self._error
        if value is None:
            raise RuntimeError(f"the {what} were not prefetched")
        return value

    def _cancelled_unclaimed(self) -> bool:
        with self._lock:
            return self._cancelled.is_set() and not self._claimed

    def _run(self) -> None:
        lower_priority()
        try:
            if self._cancelled.wait(self._delay_s):
                return
            with self._lock:
                if self._cancelled.is_set():
                    return
                self._started = True
            scene = self.scene
            if self.has_guidance:
                self._guidance = self._pipeline.guidance_feature(
                    scene.image, self.sparse, scene.init_depth
                )
            if self.has_baselines and not self._cancelled_unclaimed():
                self._baselines = baseline_predictions(
                    self._pipeline, scene, self.sparse, self.schedule_points
                )
        except Exception as error:  # handed to whoever asks for a result
            self._error = error
        finally:
            self._done.set()


class PrefetchSlot:
    """A session's current :class:`Prefetch` (at most one; a new one replaces the last)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: Prefetch | None = None

    def __deepcopy__(self, memo: dict) -> PrefetchSlot:
        """An empty slot: each user's session starts as a deep copy of the page's default."""
        return PrefetchSlot()

    @property
    def current(self) -> Prefetch | None:
        """The prefetch the slot holds now, if any."""
        return self._current

    def put(self, prefetch: Prefetch | None) -> None:
        """Hold ``prefetch`` instead of the last one, which is cancelled."""
        with self._lock:
            old, self._current = self._current, prefetch
        if old is not None:
            old.cancel()

    def take(self, scene: Scene, sparse: np.ndarray) -> Prefetch | None:
        """The prefetch for exactly these inputs, if its work has begun.

        It stays in the slot for the next run on the same plan (Refine again, the no-mask
        run). Anything else (other inputs, or a prefetch still waiting out its delay) is
        cancelled and dropped, and None returned: the run then computes everything itself.
        """
        with self._lock:
            current = self._current
            if current is None:
                return None
            if current.matches(scene, sparse) and current.claim():
                return current
            self._current = None
        current.cancel()
        return None

    def clear(self) -> None:
        """Cancel and drop what the slot holds (a session that leaves)."""
        self.put(None)
