"""MSPN Studio: watch a masked spatial propagation network refine depth, iteration by iteration.

Gradio UI only: the layout, and each event wired to one method of
:class:`studio.page.Studio`, which returns what the page changes (a :class:`studio.page.View`
naming the components below by their attribute names). Per-user data lives in ``gr.State``
and the pipeline (weights) is loaded once and only read. Every event answers every state
(no scene, no run, a cleared file, a stopped run) with updates or a message in plain words,
never a traceback.

    python app.py                 # bundled checkpoints, CUDA when available, else CPU
    python app.py --untrained     # random weights (development, before training)

The same file is the entry point of a Hugging Face Space (``app_file: app.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

try:  # Hugging Face ZeroGPU: import before torch touches CUDA. Absent elsewhere.
    import spaces
except ImportError:
    spaces = None

import gradio as gr

from sdr_core import SDRPipeline, build_untrained_pipeline, load_pipeline
from sdr_core.data import io
from sdr_core.mde import DepthEstimator
from studio import page, run, scene, session, widgets

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
MAX_FILE_SIZE = "64mb"  # uploads; images are also refused above io.MAX_PIXELS
RUN_QUEUE_SIZE = 16  # refinements (and ablations) waiting for a slot; more are turned away
CONCURRENCY = 2
RUNS = "runs"  # queue group of the refinements and ablations: the only heavy events
EDITS = "session-edits"  # queue group of the cheap events that edit a session's points and hole
SESSION_TTL_MIN = 30  # an open but idle tab's session is dropped this long after its last event

IMAGE_TYPES = [*io.IMAGE_EXTENSIONS, ".h5", ".hdf5"]
DEPTH_TYPES = list(io.DEPTH_EXTENSIONS)

# The log-scale points slider shows N in its own number box (beside it), not log10 N;
# gallery titles wrap instead of being cut.
CSS = """
#points_slider input[type="number"] { display: none; }
#points_slider .min_value, #points_slider .max_value { visibility: hidden; }
#examples .caption-label, #examples figcaption {
  white-space: normal !important; overflow: visible !important;
  text-overflow: clip !important; line-height: 1.15;
}
#hole_editor .brush-loading {
  position: absolute; inset: 0; z-index: 100; display: flex; align-items: center;
  justify-content: center; background: var(--background-fill-primary); opacity: 0.85;
  color: var(--body-text-color); cursor: progress; font-weight: 600;
}
"""


def _gpu(duration: Any) -> Any:
    """``spaces.GPU(duration=...)`` on ZeroGPU, a no-op decorator elsewhere."""
    if spaces is None:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


def launch_kwargs() -> dict[str, Any]:
    """``launch()`` settings shared by ``__main__`` and the tests."""
    return {"max_file_size": MAX_FILE_SIZE, "allowed_paths": [str(ASSETS_DIR)], "css": CSS}


def enable_queue(blocks: gr.Blocks) -> gr.Blocks:
    """The queue shared by ``__main__`` and the tests.

    No overall size: a full queue of runs must never turn away a click on an example, a
    point or the slider. Only runs are bounded, by :func:`_runs_waiting` in their validator.
    """
    return blocks.queue(default_concurrency_limit=CONCURRENCY, max_size=None)


def _runs_waiting(blocks: gr.Blocks) -> int:
    """Refinements and ablations waiting in the queue for a slot (not those running)."""
    queue = getattr(blocks, "_queue", None)
    groups = getattr(queue, "event_queue_per_concurrency_id", {})
    waiting = groups.get(RUNS)
    return len(waiting.queue) if waiting is not None else 0


def _forget_session(blocks: gr.Blocks, request: gr.Request) -> None:
    """A closed tab: drop its session now (its run stops; its memory and downloads go).

    Gradio would otherwise keep a closed tab's state for an hour in case it reconnects; this
    page has nothing to reconnect to (a reload starts a new session).
    """
    holder = getattr(blocks, "state_holder", None)
    session_hash = getattr(request, "session_hash", None)
    if holder is None or session_hash is None or session_hash not in holder:
        return
    holder.delete_state(session_hash)  # calls each state's delete_callback (run.forget)
    with holder.lock:
        holder.session_data.pop(session_hash, None)  # its components' last values too
        holder.time_last_used.pop(session_hash, None)
    run.return_freed_memory()


# ----------------------------------------------------------------------------- views -> Gradio
def _outputs(ui: SimpleNamespace, event: str) -> list[gr.components.Component]:
    """The components ``page.OUTPUTS[event]`` names, in its order (checked at start-up)."""
    missing = [name for name in page.OUTPUTS[event] if not hasattr(ui, name)]
    if missing:
        raise RuntimeError(f"page.OUTPUTS[{event!r}] names {missing}, which the page lacks")
    return [getattr(ui, name) for name in page.OUTPUTS[event]]


def _shown(ui: SimpleNamespace, view: page.View, event: str) -> Any:
    """A studio view of ``event`` as Gradio updates: toasts, then new values by component."""
    page.check_view(event, view)
    for message in view.warnings:
        gr.Warning(message)
    if not view.changes:
        return gr.skip()
    return {
        getattr(ui, name): gr.update(**value.props) if isinstance(value, page.Update) else value
        for name, value in view.changes.items()
    }


def _call(ui: SimpleNamespace, method: Callable[..., page.View], *args: Any) -> Any:
    """One studio call; its ``ValueError`` becomes a plain-words error, no traceback logged."""
    try:
        return _shown(ui, method(*args), method.__name__)
    except ValueError as error:
        raise gr.Error(str(error), print_exception=False) from error


def _handler(ui: SimpleNamespace, method: Callable[..., page.View]) -> Callable[..., Any]:
    """An event handler calling ``method`` with the event's inputs."""

    def handler(*args: Any) -> Any:
        return _call(ui, method, *args)

    handler.__name__ = f"on_{method.__name__}"
    return handler


def _streamed(ui: SimpleNamespace, method: Callable[..., Iterator[page.View]]) -> Callable:
    """A generator handler streaming the views of ``method``."""

    def handler(*args: Any) -> Iterator[Any]:
        try:
            for view in method(*args):
                yield _shown(ui, view, method.__name__)
        except ValueError as error:
            raise gr.Error(str(error), print_exception=False) from error

    handler.__name__ = f"on_{method.__name__}"
    return handler


# ----------------------------------------------------------------------------- layout
def _upload(label: str, types: list[str], elem_id: str | None = None) -> gr.File:
    """A file upload handed to the studio as a path."""
    return gr.File(label=label, file_types=types, type="filepath", elem_id=elem_id)


def _drawn(label: str, elem_id: str, **options: Any) -> gr.Image:
    """An image the studio draws (PNG); clicks on it are events, it takes no upload."""
    return gr.Image(
        label=label, type="numpy", format="png", interactive=False, elem_id=elem_id, **options
    )


def _scene_column(ui: SimpleNamespace, studio: page.Studio) -> None:
    """1 · Scene: gallery, initial depth, uploads, resolution."""
    gr.Markdown("### 1 · Scene")
    gr.Markdown("Examples: click one to fill the image and its ground truth.")
    ui.gallery = gr.Gallery(
        value=[(str(e.image), e.title) for e in studio.examples],
        label="Examples",
        show_label=False,
        columns=4,
        height="auto",
        allow_preview=False,
        object_fit="cover",
        interactive=False,
        buttons=[],
        elem_id="examples",
    )
    ui.example_index = gr.Number(None, visible=False, precision=0)
    choices, default = studio.init_choices()
    ui.init_source = gr.Radio(
        choices,
        value=default,
        label="Initial depth D0",
        info="The simulated estimators need ground truth (the examples have it)",
        elem_id="init_source",
    )
    with gr.Accordion("Upload your own", open=False):
        ui.image_file = _upload(
            "Image (PNG, JPEG, WebP, BMP, TIFF, or NYUv2 .h5 with depth)", IMAGE_TYPES, "image_file"
        )
        ui.depth_file = _upload("Ground-truth depth (optional)", DEPTH_TYPES, "depth_file")
        ui.units = gr.Radio(
            list(widgets.UNIT_CHOICES), value="auto (by file type)", label="Depth units"
        )
        ui.init_file = _upload(
            "Initial depth from your own MDE (same size as the image; once uploaded it is "
            "used, and offered above as 'uploaded initial depth')",
            DEPTH_TYPES,
        )
    default_side, max_side = studio.resolution_range()
    ui.long_side = gr.Slider(
        scene.MIN_LONG_SIDE,
        max_side,
        value=default_side,
        step=8,
        label="Processing resolution (long side, px)",
        info="228x304 is the paper's NYUv2 size; larger is slower",
        elem_id="long_side",
    )
    ui.scene_md = gr.Markdown(page.NO_SCENE, elem_id="scene")


def _points_column(ui: SimpleNamespace) -> None:
    """2 · Depth points and hole: clickable view, brush, points widgets, Refine."""
    gr.Markdown("### 2 · Depth points and hole")
    with gr.Tabs():
        with gr.Tab("Points (click to add / remove)", id="points"):
            ui.points_view = _drawn(
                "Image with depth points", "points_view", buttons=["fullscreen"]
            )
        with gr.Tab("Hole (brush)", id="hole") as ui.hole_tab:
            ui.editor = gr.ImageEditor(
                label="Paint where measurements are dropped",
                type="numpy",
                image_mode="RGBA",
                sources=(),
                transforms=(),
                layers=False,
                brush=gr.Brush(colors=[("#ffffff", 0.7)], default_size=12, color_mode="fixed"),
                eraser=gr.Eraser(default_size=12),
                format="png",
                elem_id="hole_editor",
            )
            with gr.Row():
                ui.centre_btn = gr.Button("Centre hole (paper, Table 4)", size="sm")
                ui.clear_hole_btn = gr.Button("Clear hole", size="sm")
    ui.mode = gr.Radio(list(session.SPARSE_MODES), value="random points", label="Points")
    with gr.Row():
        ui.points_slider = gr.Slider(
            0,
            round(math.log10(session.MAX_POINTS), 2),
            value=2.0,
            step=0.01,
            label="Random points (log scale: 1 - 5000)",
            scale=3,
            elem_id="points_slider",
        )
        ui.n_points = gr.Number(
            100, precision=0, minimum=1, maximum=session.MAX_POINTS, label="N", scale=1
        )
    with gr.Row():
        ui.n_lines = gr.Slider(
            session.MIN_LINES, session.MAX_LINES, value=16, step=1, label="LiDAR lines"
        )
        ui.seed = gr.Number(0, precision=0, minimum=0, label="Seed")
    with gr.Row():
        ui.click_md = gr.Markdown("", elem_id="click_message")
    with gr.Row():
        ui.point_depth = gr.Number(
            None,
            label="Depth of the clicked point (m)",
            info="No ground truth here: type the measured depth; it is used as "
            "soon as you leave the box or press Refine",
            interactive=True,
            visible=False,
            scale=3,
            elem_id="point_depth",
        )
        ui.clear_points_btn = gr.Button("Reset clicked points", size="sm", scale=1)
    ui.plan_md = gr.Markdown("", elem_id="plan")
    with gr.Row():
        ui.no_mask = gr.Checkbox(False, label="No mask (ablation): watch errors propagate", scale=2)
        ui.run_btn = gr.Button("Refine ▶", variant="primary", scale=1)
        ui.stop_btn = gr.Button(
            "Stop ■", variant="stop", scale=1, elem_id="stop", interactive=False
        )


def _refinement_section(ui: SimpleNamespace) -> None:
    """3 · Refinement: the frame, its caption, scrubbing and playback."""
    gr.Markdown("### 3 · Refinement, iteration by iteration")
    gr.Markdown(
        "Depth (near = red, far = blue) · propagation mask (0 = purple, 1 = yellow) · "
        "absolute error against the ground truth; each with its colour bar, one scale "
        "for every frame."
    )
    ui.frame = _drawn("Refinement frame", "frame", show_label=False, height=380)
    ui.caption = gr.Textbox(label="Frame", interactive=False, elem_id="caption")
    with gr.Row():
        ui.scrub = gr.Slider(
            0,
            1,
            value=0,
            step=1,
            label="Scrub frames (drag, type a number, or use the arrow keys)",
            interactive=False,
            scale=5,
            elem_id="scrub",
        )
        ui.play_btn = gr.Button("Play", size="sm", scale=1, interactive=False, elem_id="play")
    ui.timer = gr.Timer(1 / run.ANIMATION_FPS, active=False)


def _result_tabs(ui: SimpleNamespace) -> None:
    """Metrics, point cloud, teaching view and downloads of the last run."""
    with gr.Tab("Metrics"):
        ui.metrics_note = gr.Markdown(
            "Metrics need ground truth; run an example.", elem_id="run_note"
        )
        ui.table = gr.Dataframe(
            value=page.EMPTY_TABLE,
            label="Final metrics",
            interactive=False,
            wrap=True,
            elem_id="metrics_table",
        )
        ui.ablation_btn = gr.Button(
            "Compare with MSPN without mask (ablation, Fig. 10d): runs it once more",
            size="sm",
            interactive=False,
            elem_id="ablation",
        )
        ui.chart = gr.Plot(label="Metrics per iteration (both layers)", show_label=False)
    with gr.Tab(page.CLOUD_TAB):
        ui.cloud = gr.Plot(
            label="Refined depth as a point cloud (coloured by the image)",
            show_label=False,
            elem_id="point_cloud",
        )
    with gr.Tab("Teaching view"):
        gr.Markdown(
            "Click a pixel to see its 13x13 attention window at the frame shown above "
            "(the weights that produced that frame)."
        )
        with gr.Row():
            ui.inspect_img = _drawn("Depth at this frame (click a pixel)", "inspect_view")
            ui.inspect_md = gr.Markdown("", elem_id="inspect_text")
        ui.inspect_plot = gr.Plot(label="Attention window", show_label=False)
    with gr.Tab("Downloads"):
        ui.downloads_md = gr.Markdown(page.DOWNLOADS_LATER, elem_id="downloads_note")
        ui.files = gr.File(label="Animation, refined depth, point cloud, metrics",
                           file_count="multiple", interactive=False)  # fmt: skip


# ----------------------------------------------------------------------------- wiring
def _wire_scene(ui: SimpleNamespace, studio: page.Studio, app: gr.Blocks) -> None:
    """Gallery, uploads and reloads: a new scene (or the old one kept, with a message)."""
    sparse = [ui.mode, ui.n_points, ui.n_lines, ui.seed]
    load_inputs = [ui.image_file, ui.depth_file, ui.units, ui.init_source, ui.init_file,
                   ui.long_side, ui.current_example, ui.session, *sparse]  # fmt: skip

    def on_gallery(evt: gr.SelectData) -> int:
        return int(evt.index)

    ui.gallery.select(on_gallery, None, ui.example_index, api_visibility="private").then(
        _handler(ui, studio.load_example),
        [ui.example_index, ui.long_side, ui.session, *sparse, ui.init_source],
        _outputs(ui, "load_example"),
        api_name="load_example",
    )
    files = [ui.image_file.upload, ui.image_file.clear, ui.depth_file.upload, ui.depth_file.clear]
    gr.on(files, _handler(ui, studio.upload), load_inputs, _outputs(ui, "upload"),
          api_name="upload")  # fmt: skip
    changes = [ui.units.input, ui.init_source.input, ui.long_side.release]
    gr.on(changes, _handler(ui, studio.reload), load_inputs, _outputs(ui, "reload"),
          api_name="reload")  # fmt: skip
    gr.on([ui.init_file.upload, ui.init_file.clear], _handler(ui, studio.init_file), load_inputs,
          _outputs(ui, "init_file"), api_name="init_file")  # fmt: skip
    app.load(_handler(ui, studio.page_load), None, _outputs(ui, "page_load"),
             api_visibility="private", show_progress="hidden")  # fmt: skip


# A click on the image reaches the server before the depth box has synced what was typed
# into it: read the box itself (the event's second input) when the click is sent.
_TYPED_DEPTH_JS = """(...inputs) => {
    const box = document.querySelector('#point_depth input');
    if (box && box.value.trim() !== '' && Number.isFinite(Number(box.value))) {
        inputs[1] = Number(box.value);
    }
    return inputs;
}"""


# The brush editor is built when its tab first opens: it loads the image, then makes the
# brush its tool. A drag before that paints nothing (its icon already looks selected), so
# the editor is veiled until it says it is ready: its first "input" event, which the
# loaded image sends (or after 8 s, should that event never come). No veil without a scene.
_BRUSH_READY_JS = """() => {
    const editor = document.querySelector('#hole_editor');
    if (editor) editor.dataset.ready = '1';
}"""
_BRUSH_VEIL_JS = """() => {
    const opened = Date.now();
    const veil = () => {
        const editor = document.querySelector('#hole_editor');
        if (!editor) {
            if (Date.now() - opened < 8000) requestAnimationFrame(veil);
            return;
        }
        const scene = document.querySelector('#scene');
        if (editor.dataset.ready || !scene || scene.textContent.includes(NO_SCENE)) return;
        const cover = editor.querySelector('.brush-loading') || document.createElement('div');
        cover.className = 'brush-loading';
        cover.textContent = 'Loading the image for the brush…';
        editor.appendChild(cover);
        const lift = () => {
            if (editor.dataset.ready || Date.now() - opened > 8000) cover.remove();
            else setTimeout(lift, 50);
        };
        lift();
    };
    veil();
}""".replace("NO_SCENE", json.dumps(page.NO_SCENE))


def _wire_points(ui: SimpleNamespace, studio: page.Studio) -> None:
    """Points widgets, clicks, typed depths and the hole."""
    sparse = [ui.mode, ui.n_points, ui.n_lines, ui.seed]
    ui.points_slider.release(_handler(ui, studio.points_slider), ui.points_slider,
                             _outputs(ui, "points_slider"), api_visibility="private")  # fmt: skip
    ui.n_points.change(_handler(ui, studio.points_number), ui.n_points,
                       _outputs(ui, "points_number"), api_visibility="private")  # fmt: skip
    widgets_changed = [ui.mode.change, ui.n_points.change, ui.n_lines.release, ui.seed.change]
    gr.on(widgets_changed, _handler(ui, studio.points), [ui.session, *sparse],
          _outputs(ui, "points"), api_name="points")  # fmt: skip

    def on_click(
        state: session.Session, typed: float | None, mode: str, n: float, lines: float,
        seed: float, evt: gr.SelectData,
    ) -> Any:  # fmt: skip
        return _call(ui, studio.click, state, evt.index, typed, mode, n, lines, seed)

    # The edits of a session's points and hole read the session and write it back: run
    # concurrently, the last to finish would undo the other. One queue group, one at a
    # time, in the order the page sent them.
    # The typed depth is committed by Enter, and travels with the next click and with
    # Refine (each commits it to the point it was typed for). Not on blur: a click on the
    # image blurs the box first, and the redrawn image then swallowed the click.
    edits = {"concurrency_id": EDITS, "concurrency_limit": 1}
    ui.points_view.select(on_click, [ui.session, ui.point_depth, *sparse], _outputs(ui, "click"),
                          js=_TYPED_DEPTH_JS, api_visibility="private", **edits)  # fmt: skip
    gr.on([ui.point_depth.submit], _handler(ui, studio.point_depth),
          [ui.session, ui.point_depth, *sparse], _outputs(ui, "point_depth"),
          api_name="point_depth",
          trigger_mode="always_last", **edits)  # fmt: skip
    ui.clear_points_btn.click(_handler(ui, studio.clear_points), [ui.session, *sparse],
                              _outputs(ui, "clear_points"), api_name="clear_points",
                              **edits)  # fmt: skip
    ui.editor.input(_handler(ui, studio.paint_hole), [ui.session, ui.editor, *sparse],
                    _outputs(ui, "paint_hole"), api_name="paint_hole", trigger_mode="always_last",
                    **edits)  # fmt: skip
    ui.hole_tab.select(None, None, None, js=_BRUSH_VEIL_JS, queue=False,
                       api_visibility="private")  # fmt: skip
    ui.editor.input(None, None, None, js=_BRUSH_READY_JS, queue=False,
                    api_visibility="private")  # fmt: skip
    for button, method in ((ui.centre_btn, studio.centre_hole),
                           (ui.clear_hole_btn, studio.clear_hole)):  # fmt: skip
        button.click(_handler(ui, method), [ui.session, *sparse], _outputs(ui, method.__name__),
                     api_name=method.__name__, **edits)  # fmt: skip


def _wire_run(ui: SimpleNamespace, studio: page.Studio, app: gr.Blocks) -> None:
    """Refine (streamed), then the downloads; Stop; the ablation."""
    run_inputs = [ui.session, ui.editor, ui.mode, ui.n_points, ui.n_lines, ui.seed, ui.no_mask,
                  ui.point_depth]  # fmt: skip
    on_run = _gpu(duration=studio.run_duration)(_streamed(ui, studio.run))

    def validate_run(*inputs: Any) -> list[Any]:
        # A run that cannot start says why on the points widget, in plain words; no output
        # of the run is marked as failed (no wordless "Error" badges).
        problem = studio.run_problem(*inputs) or page.busy_problem(
            _runs_waiting(app), RUN_QUEUE_SIZE
        )
        return [gr.validate(problem is None or component is not ui.mode, problem or "")
                for component in run_inputs]  # fmt: skip

    heavy = {"concurrency_id": RUNS, "concurrency_limit": CONCURRENCY}
    run_event = ui.run_btn.click(on_run, run_inputs, _outputs(ui, "run"),
                                 validator=validate_run, api_name="run", show_progress="hidden",
                                 **heavy)  # fmt: skip
    run_event.success(_handler(ui, studio.downloads), [ui.session, ui.cloud_open],
                      _outputs(ui, "downloads"), api_name="downloads",
                      show_progress="minimal")  # fmt: skip
    # Stop (like a closed tab) cancels the run: the generator is closed between two
    # iterations, so its worker is free for the next request; frames so far stay and
    # become scrubbable.
    ui.stop_btn.click(_handler(ui, studio.stop), [ui.session], _outputs(ui, "stop"),
                      cancels=[run_event],
                      api_visibility="private", queue=False)  # fmt: skip
    # Leaving the scene cancels its run in the page too: a frame already on its way is
    # dropped by the browser instead of landing on the new scene (the studio stops the run
    # itself as well: run.release).
    leaving = [ui.gallery.select, ui.image_file.upload, ui.image_file.clear,
               ui.depth_file.upload, ui.depth_file.clear, ui.init_file.upload,
               ui.init_file.clear, ui.units.input, ui.init_source.input,
               ui.long_side.release]  # fmt: skip
    gr.on(leaving, None, None, None, cancels=[run_event], queue=False)
    ui.ablation_btn.click(_gpu(duration=60)(_handler(ui, studio.ablation)), [ui.session],
                          _outputs(ui, "ablation"), api_name="ablation",
                          **heavy)  # fmt: skip


def _wire_frames(ui: SimpleNamespace, studio: page.Studio) -> None:
    """Scrubbing, playback and the teaching view."""
    # .input: dragging, the slider's number box and the arrow keys; .release: a click.
    gr.on([ui.scrub.input, ui.scrub.release], _gpu(duration=20)(_handler(ui, studio.frame)),
          [ui.session, ui.scrub], _outputs(ui, "frame"), api_name="frame",
          trigger_mode="always_last", show_progress="hidden")  # fmt: skip
    ui.play_btn.click(_handler(ui, studio.play), [ui.session, ui.playing], _outputs(ui, "play"),
                      api_visibility="private")  # fmt: skip
    ui.timer.tick(_handler(ui, studio.tick), [ui.session], _outputs(ui, "tick"),
                  api_visibility="private",
                  concurrency_limit=None, show_progress="hidden")  # fmt: skip

    @_gpu(duration=30)
    def on_inspect(state: session.Session, evt: gr.SelectData) -> Any:
        return _call(ui, studio.inspect, state, evt.index)

    ui.inspect_img.select(on_inspect, [ui.session], _outputs(ui, "inspect"),
                          api_visibility="private")  # fmt: skip

    def on_result_tab(state: session.Session, evt: gr.SelectData) -> Any:
        return _call(ui, studio.result_tab, state, evt.value)

    ui.result_tabs.select(on_result_tab, [ui.session], _outputs(ui, "result_tab"),
                          api_visibility="private", show_progress="minimal")  # fmt: skip


def build_demo(
    pipeline: SDRPipeline,
    examples: list[scene.Example] | None = None,
    estimators: Mapping[str, DepthEstimator] | scene.EstimatorLoader | None = None,
    frame_interval_s: float | None = None,
) -> gr.Blocks:
    """Build the UI around a pipeline; tests pass a tiny untrained one.

    Args:
        pipeline: loaded once, shared read-only by every session.
        examples: gallery scenes; default ``assets/examples.json`` plus Middlebury.
        estimators: optional MDEs offered as initial-depth choices, shared read-only like
            the pipeline: a dict of those that loaded (``scene.load_optional_estimators``),
            or a ``scene.EstimatorLoader`` still loading them in the background (the page
            never waits; a page opened after they loaded offers them).
        frame_interval_s: the least time between two streamed frames (None: about 5 a
            second; 0, as the tests use, streams every iteration).
    """
    if examples is None:
        examples = scene.load_examples(ASSETS_DIR)
    studio = page.Studio(pipeline, examples, estimators, frame_interval_s)
    ui = SimpleNamespace()  # the components, by the names studio views use
    with gr.Blocks(title="MSPN Studio", delete_cache=(1800, 7200)) as app:
        ui.session = gr.State(
            session.Session(), time_to_live=SESSION_TTL_MIN * 60, delete_callback=run.forget
        )
        ui.playing = gr.State(False)
        ui.current_example = gr.State(None)  # gallery index of the loaded scene, if any
        gr.Markdown(page.INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                _scene_column(ui, studio)
            with gr.Column(scale=3, min_width=360):
                _points_column(ui)
        _refinement_section(ui)
        ui.cloud_open = gr.State(False)  # the point cloud's tab is the one open
        with gr.Tabs() as ui.result_tabs:
            _result_tabs(ui)
        _wire_scene(ui, studio, app)
        _wire_points(ui, studio)
        _wire_run(ui, studio, app)

        def on_unload(request: gr.Request) -> None:
            _forget_session(app, request)

        app.unload(on_unload)
        _wire_frames(ui, studio)
    return app


def main() -> None:
    """Command line: load the pipeline once and serve the app."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--host", default=None, help="server name, e.g. 0.0.0.0")
    parser.add_argument("--port", type=int, default=None, help="server port (default 7860)")
    parser.add_argument("--untrained", action="store_true", help="random weights (development)")
    parser.add_argument(
        "--checkpoints",
        default=None,
        metavar="DIR",
        help="guidance + MSPN weights to serve (default: checkpoints/; e.g. "
        "checkpoints/faithful for the paper's configuration); the MDE is always checkpoints/'s",
    )
    parser.add_argument(
        "--depth-anything",
        default=None,
        metavar="MODEL_ID",
        help="metric Depth Anything V2 model offered (and preselected) as initial depth once "
        "it has loaded in the background, when `transformers` is installed and the weights "
        "can be had (default: the indoor small one; 'off' to skip)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    if args.untrained:
        pipeline = build_untrained_pipeline(device=args.device)
    else:
        try:
            pipeline = load_pipeline(device=args.device)
            if args.checkpoints:
                pipeline = pipeline.with_networks_from(args.checkpoints)
        except (FileNotFoundError, ValueError) as error:
            raise SystemExit(
                f"Could not load the bundled checkpoints ({error}). Train them first, or run "
                "`python app.py --untrained` to try the interface with random weights."
            ) from error
    estimators = None  # in the background: the page never waits for the download
    if args.depth_anything != "off":
        estimators = scene.start_optional_estimators(pipeline.device, args.depth_anything)
    blocks = build_demo(pipeline, estimators=estimators)
    enable_queue(blocks).launch(server_name=args.host, server_port=args.port, **launch_kwargs())


if __name__ == "__main__":
    main()
