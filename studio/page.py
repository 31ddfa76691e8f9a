"""The studio's page: what each UI event changes, as plain values (the view-model).

``app.py`` lays out the Gradio components and wires each event to one method of
:class:`Studio`. A method takes the event's input values and returns a :class:`View`: the
outputs that change, by the names ``app.py`` gives its components, each with a plain value
or an :class:`Update` of its properties (choices, visibility, ...), and warnings for the
page to show as toasts. An output the view leaves out keeps what it shows. A
``ValueError`` raised by a method is a message for the user, shown as an error.

Every method answers every state of the page (no scene, no run, a cleared file, a stopped
run), so no event ends in a traceback.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from studio import widgets
from studio.prefetch import Prefetch
from studio.run import (
    TABLE_HEADERS,
    RunUpdate,
    add_ablation,
    halt,
    point_cloud,
    release,
    run_duration_s,
    run_extras,
    run_steps,
    show_frame,
)
from studio.scene import (
    DEFAULT_LONG_SIDE_CPU,
    DEFAULT_LONG_SIDE_GPU,
    INIT_BUNDLED,
    INIT_SIMULATED,
    INIT_UPLOADED,
    MAX_LONG_SIDE,
    EstimatorLoader,
    Example,
    Scene,
    default_init_source,
    init_sources,
    load_example,
    load_scene,
    pick_estimator,
    valid_init_source,
    warning_notes,
)
from studio.session import (
    RunExtras,
    RunRecord,
    Session,
    SparseChoice,
    SparseInputs,
    build_sparse,
    clear_points,
    default_mode,
    display_factor,
    editor_background,
    new_session,
    no_points_message,
    points_preview,
    set_centre_hole,
    set_hole,
    set_point_depth,
    toggle_point,
)
from studio.teaching import inspect_pixel, inspect_view
from studio.worker import Background

if TYPE_CHECKING:
    import numpy as np
    import plotly.graph_objects as go

    from sdr_core.mde import DepthEstimator
    from sdr_core.pipeline import SDRPipeline

__all__ = [
    "EMPTY_TABLE", "INTRO", "NO_SCENE", "OUTPUTS", "Studio", "Update", "View", "busy_problem",
    "check_view",
]  # fmt: skip

INTRO = """# MSPN Studio · sparsity-adaptive depth refinement
Masked Spatial Propagation Network (Jun, Lee & Kim, CVPR 2024): a monocular depth estimate is
refined from a few depth measurements by two MSPN layers that grow a confidence **mask**
outward from the measurements. **1** pick an example or upload an image, **2** choose points
(click the image to add or remove one) and paint a hole, **3** press *Refine* and watch
every iteration.

*The bundled networks are small and were trained by this project on its own procedural indoor
scenes, on a CPU: the bundled depth estimator is weak, especially on real photographs, and the
refinement is at its best with many points or lines. Choose a better initial depth (simulated
from the ground truth, or upload your own: "bring your own MDE") to see how the refinement
depends on it; see checkpoints/README.md for the figures.*"""
NO_SCENE = "No scene yet: pick an example above or upload an image."
LOAD_FIRST = "Load an image first: pick an example or upload one."
DOWNLOADS_LATER = "The downloads are prepared when a run ends."
CLOUD_TAB = "Point cloud"  # the results tab that shows the point cloud
DOWNLOADS_READY = (
    "Depth in millimetres (16-bit PNG) and metres (.npy), a coloured preview, the animation, "
    "the point cloud (.ply) and metrics.json."
)
EMPTY_TABLE = {"headers": TABLE_HEADERS, "data": []}
CPU_MAX_LONG_SIDE = 640  # the resolution slider's end without a GPU
GPU_SECONDS_PER_MPX_ITERATION = 0.5  # generous ZeroGPU budget per iteration and megapixel


@dataclass(frozen=True)
class Update:
    """New properties of a component, e.g. ``Update({"maximum": 9, "interactive": True})``."""

    props: Mapping[str, Any]


def update(**props: Any) -> Update:
    """An :class:`Update` of the given properties."""
    return Update(props)


@dataclass
class View:
    """What one event changes: values or :class:`Update` by output name, and toasts."""

    changes: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- outputs
# What each event may change, by component name, in the order the page wires them: the one
# list app.py builds its outputs from (a name it lacks stops the app at start-up) and the
# views are checked against (a view changing anything else is a programming error).
RUN_OUTPUTS = (
    "frame", "caption", "scrub", "play_btn", "table", "chart", "cloud", "files",
    "metrics_note", "inspect_img", "inspect_md", "inspect_plot", "ablation_btn",
    "downloads_md", "stop_btn",
)  # fmt: skip
SCENE_OUTPUTS = (
    "session", "scene_md", "editor", "click_md", "point_depth", "mode", "init_source",
    "points_view", "plan_md", *RUN_OUTPUTS,
)  # fmt: skip
_POINTS = ("points_view", "plan_md")
_CLICK = ("session", "click_md", "point_depth", *_POINTS)
_HOLE = ("session", "editor", *_POINTS)
_INSPECTED = ("inspect_img", "inspect_md", "inspect_plot")
_PLAYBACK = ("timer", "play_btn", "playing")
OUTPUTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "page_load": ("init_source",),
        "load_example": (*SCENE_OUTPUTS, "image_file", "depth_file", "units", "current_example"),
        "upload": (*SCENE_OUTPUTS, "depth_file", "current_example"),
        "reload": SCENE_OUTPUTS,
        "init_file": SCENE_OUTPUTS,
        "points_slider": ("n_points",),
        "points_number": ("points_slider",),
        "points": _POINTS,
        "click": _CLICK,
        "point_depth": ("session", *_POINTS),
        "clear_points": _CLICK,
        "paint_hole": _HOLE,
        "centre_hole": _HOLE,
        "clear_hole": _HOLE,
        "run": ("session", *RUN_OUTPUTS),
        "downloads": ("cloud", "files", "downloads_md"),
        "result_tab": ("cloud_open", "cloud"),
        "stop": ("frame", "caption", "scrub", "play_btn", "metrics_note", "stop_btn"),
        "ablation": ("table", "chart", "ablation_btn", "files"),
        "frame": ("frame", "caption", *_INSPECTED),
        "play": (*_PLAYBACK, "scrub", "frame", "caption"),
        "tick": ("frame", "caption", "scrub", *_PLAYBACK),
        "inspect": ("session", *_INSPECTED),
    }
)


def check_view(event: str, view: View) -> View:
    """``view`` if it changes only ``OUTPUTS[event]``; else a ``RuntimeError`` naming the rest."""
    stray = set(view.changes) - set(OUTPUTS[event])
    if stray:
        raise RuntimeError(f"Studio.{event} changed {sorted(stray)}, not among its outputs")
    return view


# A scene's loader: (optional estimator, simulated quality) -> Scene
SceneLoader = Callable[["DepthEstimator | None", "str | None"], Scene]


class Studio:
    """The page's behaviour around one read-only pipeline, one method per UI event.

    Args:
        pipeline: loaded once, shared read-only by every session.
        examples: the gallery's scenes.
        estimators: optional MDEs offered as initial depth, shared read-only like the
            pipeline: a dict of those that loaded, or an :class:`EstimatorLoader` still
            loading them in the background (the page never waits for them).
        frame_interval_s: the least time between two streamed frames of a run (None: the
            default, about 5 frames a second; 0 streams every iteration).
    """

    def __init__(
        self,
        pipeline: SDRPipeline,
        examples: Sequence[Example],
        estimators: Mapping[str, DepthEstimator] | EstimatorLoader | None = None,
        frame_interval_s: float | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.frame_interval_s = frame_interval_s  # None: studio.run.FRAME_INTERVAL_S
        self.examples = list(examples)
        if isinstance(estimators, EstimatorLoader):
            self.available: Callable[[], Mapping[str, DepthEstimator]] = estimators.available
        else:
            fixed = dict(estimators or {})
            self.available = lambda: fixed

    # ------------------------------------------------------------------------ the layout
    def resolution_range(self) -> tuple[int, int]:
        """(default, largest) processing long side: larger on a GPU."""
        if self.pipeline.device.type == "cuda":
            return DEFAULT_LONG_SIDE_GPU, MAX_LONG_SIDE
        return DEFAULT_LONG_SIDE_CPU, CPU_MAX_LONG_SIDE

    def init_choices(self) -> tuple[list[str], str]:
        """The initial-depth choices a new page offers, and the one selected."""
        available = self.available()
        return init_sources(available), default_init_source(available)

    # ------------------------------------------------------------------------ scenes
    def page_load(self) -> View:
        """A new page offers the optional MDEs loaded by now (never waits for them)."""
        choices, value = self.init_choices()
        return View({"init_source": update(choices=choices, value=value)})

    def load_example(self, index: int | None, side: float, state: Session, *sparse: Any) -> View:
        """A gallery scene: widgets ``(mode, points, lines, seed, initial depth)``."""
        *choice, source = sparse
        if index is None or not 0 <= int(index) < len(self.examples):
            raise ValueError(f"There is no example number {index}.")
        example = self.examples[int(index)]

        def load(estimator: DepthEstimator | None, quality: str | None) -> Scene:
            return load_example(
                self.pipeline, example, int(side), estimator=estimator, simulated_quality=quality
            )

        view = self._load(state, widgets.choice(*choice), source or INIT_BUNDLED, load)
        if "session" in view.changes:  # loaded: the upload widgets show the example's files
            view.changes.update(
                image_file=str(example.image),
                depth_file=None if example.depth is None else str(example.depth),
                units=widgets.unit_choice(example.units),
                current_example=int(index),
            )
        return view

    def reload(
        self,
        image: str | None,
        depth: str | None,
        unit: str,
        source: str,
        init: str | None,
        side: float,
        example_index: int | None,
        state: Session,
        *sparse: Any,
    ) -> View:
        """The scene again from the upload widgets (units, initial depth or size changed)."""
        example = None if example_index is None else self.examples[int(example_index)]
        if example is not None:  # a gallery scene keeps its camera and title
            image, depth = str(example.image), example.depth and str(example.depth)
        if image is None:
            message = NO_SCENE
            if depth is not None:
                message = "Ground truth received: now upload the image it belongs to."
            return View(self._no_scene(state, message))
        notes = []
        if source == INIT_UPLOADED and init is None:
            notes.append("Upload the initial depth file; using the bundled MDE meanwhile.")

        def load(estimator: DepthEstimator | None, quality: str | None) -> Scene:
            return load_scene(
                self.pipeline,
                image,
                depth,
                units=widgets.UNIT_CHOICES.get(unit, None if example is None else example.units),
                init_depth_path=init if source == INIT_UPLOADED else None,
                long_side=int(side),
                intrinsics=None if example is None else example.intrinsics,
                name=None if example is None else example.title,
                estimator=estimator,
                simulated_quality=quality,
            )

        view = self._load(
            state, widgets.choice(*sparse), source or INIT_BUNDLED, load, uploaded=init is not None
        )
        view.warnings[:0] = notes
        return view

    def init_file(
        self, image: str | None, depth: str | None, unit: str, source: str, init: str | None,
        *inputs: Any,
    ) -> View:  # fmt: skip
        """An initial-depth file was uploaded (use it) or cleared (back to an MDE).

        The inputs are :meth:`reload`'s.
        """
        source = INIT_UPLOADED if init is not None else source
        return self.reload(image, depth, unit, source, init, *inputs)

    def upload(self, image: str | None, depth: str | None, *inputs: Any) -> View:
        """A file was uploaded or cleared: a new scene, or (no image) the empty page.

        The inputs after the two files are :meth:`reload`'s.
        """
        unit, source, init, side, example_index, state, *sparse = inputs
        if image is None and example_index is not None:  # the example's image cleared
            return View({**self._no_scene(state), "depth_file": None, "current_example": None})
        view = self.reload(image, depth, unit, source, init, side, None, state, *sparse)
        if "session" in view.changes:  # not kept: this is no gallery scene any more
            view.changes["current_example"] = None
        return view

    def _load(
        self,
        state: Session,
        choice: SparseChoice,
        source: str,
        load: SceneLoader,
        uploaded: bool = False,
    ) -> View:
        """Load a scene with the chosen initial depth; its warnings become toasts.

        A file that cannot be used is named in a toast and under the scene; the scene
        already loaded (and its points) stays, nothing else changes. ``uploaded``: an
        initial-depth file is there to be chosen.
        """
        estimator, unavailable = pick_estimator(source, self.available())
        warnings = [unavailable] if unavailable else []
        try:
            scene = load(estimator, INIT_SIMULATED.get(source))
        except ValueError as error:
            kept = "" if state.scene is None else widgets.scene_text(state.scene) + "\n\n"
            suffix = " The scene above is kept." if state.scene is not None else ""
            return View({"scene_md": f"{kept}⚠️ {error}.{suffix}"}, [*warnings, str(error)])
        changes = self._new_scene(state, scene, choice, source, uploaded)
        return View(changes, [*warnings, *warning_notes(scene)])

    def _new_scene(
        self, old: Session, scene: Scene, choice: SparseChoice, source: str, uploaded: bool
    ) -> dict[str, Any]:
        release(old)
        session = new_session(scene)
        has_gt = scene.gt is not None
        choice = dataclasses.replace(choice, mode=default_mode(scene, choice.mode))
        available = self.available()
        return {
            "session": session,
            "scene_md": widgets.scene_text(scene),
            "editor": _editor_value(scene, None),
            "click_md": "" if has_gt else "No ground truth: click the image to add points.",
            "point_depth": update(value=None, visible=not has_gt),
            "mode": choice.mode,
            "init_source": update(
                choices=init_sources(available, has_gt, uploaded),
                value=valid_init_source(source, available, has_gt, uploaded),
            ),
            **self._points(session, choice),
            **_cleared_run(),
            "table": update(value=EMPTY_TABLE, visible=has_gt),
            "chart": update(value=None, visible=has_gt),
            "ablation_btn": update(interactive=False, visible=has_gt),
            "metrics_note": "" if has_gt else "No ground truth: metrics are hidden.",
        }

    def _no_scene(self, old: Session, message: str = NO_SCENE) -> dict[str, Any]:
        """Everything back to the empty page (a cleared image)."""
        release(old)
        return {
            "session": Session(),
            "scene_md": message,
            "editor": None,
            "click_md": "",
            "point_depth": update(value=None, visible=False),
            "points_view": None,
            "plan_md": "",
            "init_source": update(choices=init_sources(self.available())),
            **_cleared_run(),
        }

    # ------------------------------------------------------------------------ points
    def _points(self, state: Session, choice: SparseChoice) -> dict[str, Any]:
        inputs = build_sparse(self.pipeline, state, choice)
        self._prefetch(state, inputs)
        return {"points_view": points_preview(state, inputs), "plan_md": widgets.plan_text(inputs)}

    def _prefetch(self, state: Session, inputs: SparseInputs) -> None:
        """Start computing what a run on the plan now shown needs (:mod:`studio.prefetch`)."""
        if state.scene is None or inputs.n_points == 0:
            state.prefetched.clear()
            return
        state.prefetched.put(
            Prefetch(self.pipeline, state.scene, inputs.sparse, inputs.schedule_points)
        )

    def points(self, state: Session, *sparse: Any) -> View:
        """The points widgets changed: ``(mode, points, lines, seed)``."""
        if state.scene is None:
            return View({"plan_md": NO_SCENE})
        return View(self._points(state, widgets.choice(*sparse)))

    def points_slider(self, value: float) -> View:
        """The log-scale slider was let go: its number of points."""
        return View({"n_points": widgets.points_from_slider(value)})

    def points_number(self, value: float | None) -> View:
        """A number of points was typed: the slider follows."""
        return View({"points_slider": widgets.slider_from_points(int(value or 1))})

    def click(
        self, state: Session, index: Sequence[float], typed: float | None, *sparse: Any
    ) -> View:
        """A click at ``index`` (x, y) on the points view: add or remove a point.

        ``typed`` is what the depth box shows: it belongs to the point selected before this
        click and is committed to it first, so a value counts whether the user pressed
        Enter, Tab or went straight on to the next point.
        """
        if state.scene is None:
            return View(warnings=[LOAD_FIRST])
        x, y = widgets.to_processing(index, display_factor(state.scene.shape), state.scene.shape)
        choice = widgets.choice(*sparse)
        try:
            state = _committed(state, None, typed)
        except ValueError as error:  # a bad value in the box: keep it there, say why
            return View(warnings=[str(error)])
        state, message = toggle_point(state, choice, x, y)
        changes = self._points(state, choice)
        typed = state.clicks.get(state.selected) if state.selected else None
        visible = typed is not None or state.scene.gt is None
        return View(
            {
                "session": state,
                "click_md": message,
                "point_depth": update(value=typed, visible=visible),
                **changes,
            }
        )

    def point_depth(self, state: Session, value: float | None, *sparse: Any) -> View:
        """The typed depth, committed when the box loses focus or on Enter."""
        if state.scene is None or state.selected is None:
            return View()
        try:
            state = set_point_depth(state, value)
            return View({"session": state, **self._points(state, widgets.choice(*sparse))})
        except ValueError as error:
            return View(warnings=[str(error)])

    def clear_points(self, state: Session, *sparse: Any) -> View:
        """Forget the clicked and removed points."""
        if state.scene is None:
            return View({"click_md": "Nothing to reset: no scene yet."})
        state = clear_points(state)
        changes = self._points(state, widgets.choice(*sparse))
        return View({"session": state, "click_md": "", "point_depth": None, **changes})

    # ------------------------------------------------------------------------ hole
    def paint_hole(self, state: Session, painted: dict | None, *sparse: Any) -> View:
        """A brush stroke in the hole editor."""
        if state.scene is None:
            return View()
        layers = (painted or {}).get("layers") or []
        state = set_hole(state, widgets.hole_from_layers(layers, state.scene.shape))
        return View({"session": state, **self._points(state, widgets.choice(*sparse))})

    def centre_hole(self, state: Session, *sparse: Any) -> View:
        """The paper's centre hole (Table 4), drawn in the editor."""
        if state.scene is None:
            return View(warnings=[LOAD_FIRST])
        return self._hole_changed(set_centre_hole(state), sparse)

    def clear_hole(self, state: Session, *sparse: Any) -> View:
        """No hole."""
        if state.scene is None:
            return View()
        return self._hole_changed(set_hole(state, None), sparse)

    def _hole_changed(self, state: Session, sparse: Sequence[Any]) -> View:
        assert state.scene is not None
        changes = {"session": state, "editor": _editor_value(state.scene, state.hole)}
        return View({**changes, **self._points(state, widgets.choice(*sparse))})

    # ------------------------------------------------------------------------ the run
    def run_duration(self, state: Session, painted: dict | None, *widgets_: Any) -> int:
        """Seconds of GPU time to ask for (ZeroGPU) for :meth:`run` with these inputs."""
        try:
            inputs = build_sparse(self.pipeline, state, widgets.choice(*widgets_[:4]))
        except ValueError:
            return 30
        return run_duration_s(inputs.schedule, inputs.sparse.size, GPU_SECONDS_PER_MPX_ITERATION)

    def run_problem(self, state: Session, painted: dict | None, *widgets_: Any) -> str | None:
        """Why :meth:`run` cannot start with its inputs, or None when it can.

        The page checks this first (an event validator), so a refusal is one plain message
        and no output of the run is marked as failed. ``widgets_`` are :meth:`run`'s inputs
        after ``painted``: ``(mode, points, lines, seed, ablation, typed depth)``.
        """
        if state.scene is None:
            return LOAD_FIRST
        *choice, _ablation, typed = widgets_
        try:
            inputs = build_sparse(
                self.pipeline, _committed(state, painted, typed), widgets.choice(*choice)
            )
        except ValueError as error:
            return str(error)
        return None if inputs.n_points else no_points_message(inputs)

    def run(
        self,
        state: Session,
        painted: dict | None,
        mode: str,
        n_points: float | None,
        n_lines: float | None,
        seed: float | None,
        ablation: bool,
        typed: float | None,
    ) -> Iterator[View]:
        """Refine and stream every frame; the metrics table and chart follow the last."""
        state = _committed(state, painted, typed)
        choice = widgets.choice(mode, n_points, n_lines, seed)
        inputs = build_sparse(self.pipeline, state, choice)
        updates = run_steps(
            self.pipeline, state, inputs, use_mask=not ablation,
            min_interval_s=self.frame_interval_s,
            prefetched=state.prefetched.take(state.scene, inputs.sparse),
        )  # fmt: skip
        first = next(updates)
        record = state.run
        assert record is not None  # run_steps made it before its first update
        record.streaming = True
        try:
            yield View(
                {
                    **_cleared_run(),
                    "session": state,
                    "frame": first.image,
                    "caption": first.caption,
                    "scrub": update(minimum=0, maximum=first.total - 1, value=0, interactive=False),
                    "metrics_note": "Running…",
                    "stop_btn": update(interactive=True),
                }
            )
            yield from self._rest_of_run(state, record, updates)
        finally:
            record.streaming = False

    def _rest_of_run(
        self, state: Session, record: RunRecord, updates: Iterator[RunUpdate]
    ) -> Iterator[View]:
        """The frames after the first, then the summary; nothing once the run is stopped.

        ``record.stopped`` is read before each frame is computed and again before it is
        shown: the page asks for the next frame only after the previous one went out, so a
        scene that leaves (studio.run.release waits for this) never gets a frame after its
        own update.
        """
        while not record.stopped:  # Stop, or the scene left: say nothing more
            frame = next(updates, None)
            if frame is None or record.stopped:
                return
            if frame.summary is None:
                note = {"metrics_note": frame.note} if frame.note else {}
                yield View({"frame": frame.image, "caption": frame.caption, "scrub": frame.index,
                            **note})  # fmt: skip
                continue
            summary = frame.summary
            yield View(
                {
                    "session": state,
                    "scrub": update(
                        minimum=0, maximum=frame.total - 1, value=frame.index, interactive=True
                    ),
                    "play_btn": update(value="Play", interactive=True),
                    "table": {"headers": TABLE_HEADERS, "data": summary.table},
                    "chart": summary.iteration_figure,
                    "metrics_note": summary.note,
                    "ablation_btn": update(interactive=state.scene.gt is not None),
                    "inspect_img": inspect_view(state.scene, state.run, frame.index),
                    "downloads_md": "⏳ Writing the animation, depth files and point cloud…",
                    "stop_btn": update(interactive=False),
                }
            )

    def downloads(self, state: Session, cloud_open: bool = False) -> View:
        """Downloads, made right after the page is complete, and the point cloud if open.

        The point cloud comes along only when its tab is open (``cloud_open``); otherwise
        when the tab is opened (:meth:`result_tab`).
        """
        record = state.run
        if record is None or record.summary is None:
            return View()

        def make() -> tuple[RunExtras, go.Figure | None]:
            return run_extras(state), point_cloud(state) if cloud_open else None

        try:  # at a lower priority: a run started meanwhile goes first
            extras, cloud = Background(make).result()
        except (OSError, ValueError):  # the scene was cleared meanwhile: folder gone
            return View()
        if state.run is not record or not all(f.is_file() for f in extras.files):
            return View()  # a newer scene or run replaced this one
        files = [str(f) for f in extras.files]
        changes = {"files": files, "downloads_md": DOWNLOADS_READY}
        return View(changes if cloud is None else {**changes, "cloud": cloud})

    def result_tab(self, state: Session, label: str | None) -> View:
        """A results tab was opened (``label``): the point cloud goes with its own tab.

        It is made and sent only when that tab is open: a few MB of plotly JSON that a
        browser keeps (:func:`studio.run.point_cloud`).
        """
        cloud_open = label == CLOUD_TAB
        record = state.run
        if not cloud_open or record is None or record.summary is None:
            return View({"cloud_open": cloud_open})
        return View({"cloud_open": True, "cloud": point_cloud(state)})

    def stop(self, state: Session) -> View:
        """Stop: the run yields no more frames; those computed so far become scrubbable.

        The page is put in one consistent state at once: the last recorded frame with its
        caption, the slider ending there, Play enabled and a note saying where it stopped
        (a frame still on its way from the run is dropped by the run itself).
        """
        record = state.run
        if record is None or record.summary is not None or record.stopped or not record.states:
            return View()
        count = halt(record)
        index, image, caption = show_frame(state, count - 1)
        note = (
            f"Stopped after {count} of {record.total_frames} frames: scrub them, or press "
            "Refine to run again. The metrics table needs a finished run."
        )
        changes = {
            "frame": image,
            "caption": caption,
            "metrics_note": note,
            "stop_btn": update(interactive=False),
        }
        if count > 1:  # a slider needs two ends
            changes["scrub"] = update(minimum=0, maximum=index, value=index, interactive=True)
            changes["play_btn"] = update(value="Play", interactive=True)
        return View(changes)

    def ablation(self, state: Session) -> View:
        """Add the other mask setting to the metrics table (Fig. 10d)."""
        try:
            summary = add_ablation(self.pipeline, state)
        except ValueError as error:
            return View(warnings=[str(error)])
        changes = {
            "table": {"headers": TABLE_HEADERS, "data": summary.table},
            "chart": summary.iteration_figure,
            "ablation_btn": update(interactive=False),
        }
        extras = state.run.extras if state.run is not None else None
        if extras is not None:  # the downloads went out before: send metrics.json again
            changes["files"] = [str(f) for f in extras.files]
        return View(changes)

    # ------------------------------------------------------------------------ frames
    def frame(self, state: Session, index: float | None) -> View:
        """Scrubbing: the frame at ``index``, and the inspected pixel at that frame."""
        if state.run is None or index is None:
            return View()
        try:
            shown, image, text = show_frame(state, int(index))
        except ValueError as error:
            return View(warnings=[str(error)])
        changes = {"frame": image, "caption": text}
        if state.inspected is not None:
            try:
                return View({**changes, **self._inspection(state, *state.inspected)})
            except ValueError:
                pass
        return View({**changes, "inspect_img": inspect_view(state.scene, state.run, shown)})

    def play(self, state: Session, playing: bool) -> View:
        """Play from the frame shown (from the start at the end), or pause."""
        if playing or state.run is None:
            return View(_stopped())
        start = 0 if state.frame >= len(state.run.states) - 1 else state.frame
        shown, image, text = show_frame(state, start)
        changes = {"timer": update(active=True), "play_btn": "Pause", "playing": True}
        return View({**changes, "scrub": shown, "frame": image, "caption": text})

    def tick(self, state: Session) -> View:
        """The playback timer: the next frame; stops at the last."""
        if state.run is None or not state.run.states:
            return View(_stopped())
        last = len(state.run.states) - 1
        shown, image, text = show_frame(state, min(state.frame + 1, last))
        changes = {"frame": image, "caption": text, "scrub": shown}
        return View({**changes, **(_stopped() if shown >= last else {})})

    # ------------------------------------------------------------------------ teaching view
    def _inspection(self, state: Session, x: int, y: int) -> dict[str, Any]:
        inspection = inspect_pixel(self.pipeline, state, state.frame, x, y)
        return {
            "inspect_img": inspection.image,
            "inspect_md": inspection.text,
            "inspect_plot": inspection.figure,
        }

    def inspect(self, state: Session, index: Sequence[float]) -> View:
        """A click at ``index`` (x, y) on the teaching view: that pixel's attention window."""
        if state.scene is None or state.run is None:
            return View(warnings=["Run the refinement first; then click a pixel."])
        factor = display_factor(state.scene.shape)
        if float(index[0]) >= state.scene.shape[1] * factor:
            return View()  # a click on the colour bar
        x, y = widgets.to_processing(index, factor, state.scene.shape)
        try:
            changes = self._inspection(state, x, y)
        except ValueError as error:
            return View(warnings=[str(error)])
        state.inspected = (x, y)
        return View({"session": state, **changes})


def busy_problem(waiting: int, limit: int) -> str | None:
    """Why a run is turned away when ``waiting`` runs already wait for a slot (``limit``)."""
    if waiting < limit:
        return None
    return (
        f"The server is busy: {waiting} refinements are waiting for their turn. "
        "Your points and settings are kept; press Refine again in a minute."
    )


def _cleared_run() -> dict[str, Any]:
    """The run's outputs back to empty."""
    return {
        "frame": None,
        "caption": "",
        "scrub": update(minimum=0, maximum=1, value=0, interactive=False),
        "play_btn": update(value="Play", interactive=False),
        "table": EMPTY_TABLE,
        "chart": None,
        "cloud": None,
        "files": None,
        "metrics_note": "",
        "inspect_img": None,
        "inspect_md": "",
        "inspect_plot": None,
        "ablation_btn": update(interactive=False),
        "downloads_md": DOWNLOADS_LATER,
        "stop_btn": update(interactive=False),  # Stop only while a run goes on
    }


def _stopped() -> dict[str, Any]:
    """Playback stopped."""
    return {"timer": update(active=False), "play_btn": "Play", "playing": False}


def _editor_value(scene: Scene, hole: np.ndarray | None) -> dict[str, Any]:
    """The hole editor's value: the image at display size, the hole as a paint layer."""
    background = editor_background(scene)
    layers = [] if hole is None else [widgets.hole_layer(hole, display_factor(scene.shape))]
    return {"background": background, "layers": layers, "composite": background}


def _committed(state: Session, painted: dict | None, typed: float | None) -> Session:
    """The session with what the page shows: the brush's strokes and the typed depth."""
    if state.scene is None:
        return state
    if painted is not None:
        layers = painted.get("layers") or []
        state = set_hole(state, widgets.hole_from_layers(layers, state.scene.shape))
    if state.selected is not None and typed is not None:
        state = set_point_depth(state, typed)
    return state
