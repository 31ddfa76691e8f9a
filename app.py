"""MSPN Studio: watch a masked spatial propagation network refine depth, iteration by iteration.

Gradio UI only. Every handler converts widget values, calls one function of
``sdr_core.demo`` / ``sdr_core.demo_run`` and formats the result; per-user data lives in
``gr.State`` and the pipeline (weights) is loaded once and only read. Every handler answers
every state (no scene, no run, a cleared file, a stopped run) with updates for its outputs
or ``gr.skip()`` and a message in plain words, never a traceback.

    python app.py                 # bundled checkpoints, CUDA when available, else CPU
    python app.py --untrained     # random weights (development, before training)

The same file is the entry point of a Hugging Face Space (``app_file: app.py``).
"""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

try:  # Hugging Face ZeroGPU: import before torch touches CUDA. Absent elsewhere.
    import spaces
except ImportError:
    spaces = None

import gradio as gr

from sdr_core import SDRPipeline, build_untrained_pipeline, demo, demo_run, load_pipeline
from sdr_core.data import io
from sdr_core.mde import DepthEstimator

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
MAX_FILE_SIZE = "64mb"  # uploads; images are also refused above io.MAX_PIXELS
QUEUE_SIZE = 16
CONCURRENCY = 2
SESSION_TTL_S = 2 * 3600
GPU_SECONDS_PER_MPX_ITERATION = 0.5  # generous ZeroGPU budget per iteration and megapixel

IMAGE_TYPES = [*io.IMAGE_EXTENSIONS, ".h5", ".hdf5"]
DEPTH_TYPES = list(io.DEPTH_EXTENSIONS)
EMPTY_TABLE = {"headers": demo_run.TABLE_HEADERS, "data": []}
NO_SCENE = "No scene yet: pick an example above or upload an image."

# The log-scale points slider shows N in its own number box (beside it), not log10 N;
# gallery titles wrap instead of being cut.
CSS = """
#points_slider input[type="number"] { display: none; }
#examples .caption-label, #examples figcaption {
  white-space: normal !important; overflow: visible !important;
  text-overflow: clip !important; line-height: 1.15;
}
"""

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


def _gpu(duration: Any) -> Any:
    """``spaces.GPU(duration=...)`` on ZeroGPU, a no-op decorator elsewhere."""
    if spaces is None:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


def _choice(mode: str, n_points: float, n_lines: float, seed: float) -> demo.SparseChoice:
    return demo.SparseChoice(mode, int(n_points or 1), int(n_lines or 16), int(seed or 0))


def _error(error: ValueError | str) -> gr.Error:
    """A plain-words error for the page; no traceback in the server log."""
    return gr.Error(str(error), print_exception=False)


def _skip(outputs: list[Any], message: str | None = None) -> dict:
    """Leave every output as it is, optionally with a warning toast in plain words."""
    if message:
        gr.Warning(message)
    return {component: gr.skip() for component in outputs}


def launch_kwargs() -> dict[str, Any]:
    """``launch()`` settings shared by ``__main__`` and the tests."""
    return {"max_file_size": MAX_FILE_SIZE, "allowed_paths": [str(ASSETS_DIR)], "css": CSS}


def _estimator_source(
    estimators: Mapping[str, DepthEstimator] | demo.EstimatorLoader | None,
) -> Callable[[], Mapping[str, DepthEstimator]]:
    """A callable giving the optional MDEs available now (a loader fills in later)."""
    if isinstance(estimators, demo.EstimatorLoader):
        return estimators.available
    fixed = dict(estimators or {})
    return lambda: fixed


def build_demo(
    pipeline: SDRPipeline,
    examples: list[demo.Example] | None = None,
    estimators: Mapping[str, DepthEstimator] | demo.EstimatorLoader | None = None,
) -> gr.Blocks:
    """Build the UI around a pipeline; tests pass a tiny untrained one.

    Args:
        pipeline: loaded once, shared read-only by every session.
        examples: gallery scenes; default ``assets/examples.json`` plus Middlebury.
        estimators: optional MDEs offered as initial-depth choices, shared read-only like
            the pipeline: a dict of those that loaded (``demo.load_optional_estimators``),
            or a ``demo.EstimatorLoader`` still loading them in the background (the page
            never waits; a page opened after they loaded offers them).
    """
    available = _estimator_source(estimators)
    if examples is None:
        examples = demo.load_examples(ASSETS_DIR)
    on_gpu_device = pipeline.device.type == "cuda"
    default_long_side = demo.DEFAULT_LONG_SIDE_GPU if on_gpu_device else demo.DEFAULT_LONG_SIDE_CPU
    max_long_side = demo.MAX_LONG_SIDE if on_gpu_device else 640

    with gr.Blocks(title="MSPN Studio", delete_cache=(1800, 7200)) as app:
        session = gr.State(
            demo.Session(), time_to_live=SESSION_TTL_S, delete_callback=demo_run.release
        )
        playing = gr.State(False)
        current_example = gr.State(None)  # gallery index of the loaded scene, if any
        gr.Markdown(INTRO)

        with gr.Row(equal_height=False):
            # ------------------------------------------------------------ 1 inputs
            with gr.Column(scale=2, min_width=300):
                gr.Markdown("### 1 · Scene")
                gr.Markdown("Examples: click one to fill the image and its ground truth.")
                gallery = gr.Gallery(
                    value=[(str(e.image), e.title) for e in examples],
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
                example_index = gr.Number(None, visible=False, precision=0)
                init_source = gr.Radio(
                    demo.init_sources(available()),
                    value=demo.default_init_source(available()),
                    label="Initial depth D0",
                    info="The simulated estimators need ground truth (the examples have it)",
                    elem_id="init_source",
                )
                with gr.Accordion("Upload your own", open=False):
                    image_file = gr.File(
                        label="Image (PNG, JPEG, WebP, BMP, TIFF, or NYUv2 .h5 with depth)",
                        file_types=IMAGE_TYPES,
                        type="filepath",
                        elem_id="image_file",
                    )
                    depth_file = gr.File(
                        label="Ground-truth depth (optional)",
                        file_types=DEPTH_TYPES,
                        type="filepath",
                        elem_id="depth_file",
                    )
                    units = gr.Radio(
                        list(demo.UNIT_CHOICES), value="auto (by file type)", label="Depth units"
                    )
                    init_file = gr.File(
                        label="Initial depth from your own MDE (same size as the image; "
                        "choose 'uploaded initial depth' above)",
                        file_types=DEPTH_TYPES,
                        type="filepath",
                    )
                long_side = gr.Slider(
                    demo.MIN_LONG_SIDE,
                    max_long_side,
                    value=default_long_side,
                    step=8,
                    label="Processing resolution (long side, px)",
                    info="228x304 is the paper's NYUv2 size; larger is slower",
                )
                scene_md = gr.Markdown(NO_SCENE, elem_id="scene")

            # ------------------------------------------------------------ 2 sparse depth
            with gr.Column(scale=3, min_width=360):
                gr.Markdown("### 2 · Depth points and hole")
                with gr.Tabs():
                    with gr.Tab("Points (click to add / remove)", id="points"):
                        points_view = gr.Image(
                            label="Image with depth points",
                            type="numpy",
                            format="png",
                            interactive=False,
                            buttons=["fullscreen"],
                            elem_id="points_view",
                        )
                    with gr.Tab("Hole (brush)", id="hole"):
                        editor = gr.ImageEditor(
                            label="Paint where measurements are dropped",
                            type="numpy",
                            image_mode="RGBA",
                            sources=(),
                            transforms=(),
                            layers=False,
                            brush=gr.Brush(
                                colors=[("#ffffff", 0.7)], default_size=12, color_mode="fixed"
                            ),
                            eraser=gr.Eraser(default_size=12),
                            format="png",
                            elem_id="hole_editor",
                        )
                        with gr.Row():
                            centre_btn = gr.Button("Centre hole (paper, Table 4)", size="sm")
                            clear_hole_btn = gr.Button("Clear hole", size="sm")
                mode = gr.Radio(list(demo.SPARSE_MODES), value="random points", label="Points")
                with gr.Row():
                    points_slider = gr.Slider(
                        0,
                        round(math.log10(demo.MAX_POINTS), 2),
                        value=2.0,
                        step=0.01,
                        label="Random points (log scale: 1 - 5000)",
                        scale=3,
                        elem_id="points_slider",
                    )
                    n_points = gr.Number(
                        100, precision=0, minimum=1, maximum=demo.MAX_POINTS, label="N", scale=1
                    )
                with gr.Row():
                    n_lines = gr.Slider(
                        demo.MIN_LINES, demo.MAX_LINES, value=16, step=1, label="LiDAR lines"
                    )
                    seed = gr.Number(0, precision=0, minimum=0, label="Seed")
                with gr.Row():
                    click_md = gr.Markdown("", elem_id="click_message")
                with gr.Row():
                    point_depth = gr.Number(
                        None,
                        label="Depth of the clicked point (m)",
                        info="No ground truth here: type the measured depth; it is used as "
                        "soon as you leave the box or press Refine",
                        interactive=True,
                        visible=False,
                        scale=3,
                        elem_id="point_depth",
                    )
                    clear_points_btn = gr.Button("Reset clicked points", size="sm", scale=1)
                plan_md = gr.Markdown("", elem_id="plan")
                with gr.Row():
                    no_mask = gr.Checkbox(
                        False, label="No mask (ablation): watch errors propagate", scale=2
                    )
                    run_btn = gr.Button("Refine ▶", variant="primary", scale=1)
                    stop_btn = gr.Button("Stop ■", variant="stop", scale=1, elem_id="stop")

        # ---------------------------------------------------------------- 3 animation
        gr.Markdown("### 3 · Refinement, iteration by iteration")
        gr.Markdown(
            "Depth (near = red, far = blue) · propagation mask (0 = purple, 1 = yellow) · "
            "absolute error against the ground truth; each with its colour bar, one scale "
            "for every frame."
        )
        frame = gr.Image(
            label="Refinement frame",
            show_label=False,
            type="numpy",
            format="png",
            interactive=False,
            height=380,
            elem_id="frame",
        )
        caption = gr.Textbox(label="Frame", interactive=False, elem_id="caption")
        with gr.Row():
            scrub = gr.Slider(
                0,
                1,
                value=0,
                step=1,
                label="Scrub frames (drag, type a number, or use the arrow keys)",
                interactive=False,
                scale=5,
                elem_id="scrub",
            )
            play_btn = gr.Button("Play", size="sm", scale=1, interactive=False, elem_id="play")
        timer = gr.Timer(1 / demo_run.ANIMATION_FPS, active=False)

        with gr.Tabs():
            with gr.Tab("Metrics"):
                metrics_note = gr.Markdown(
                    "Metrics need ground truth; run an example.", elem_id="run_note"
                )
                table = gr.Dataframe(
                    value=EMPTY_TABLE,
                    label="Final metrics",
                    interactive=False,
                    wrap=True,
                    elem_id="metrics_table",
                )
                ablation_btn = gr.Button(
                    "Compare with MSPN without mask (ablation, Fig. 10d): runs it once more",
                    size="sm",
                    interactive=False,
                    elem_id="ablation",
                )
                chart = gr.Plot(label="Metrics per iteration (both layers)", show_label=False)
            with gr.Tab("Point cloud"):
                cloud = gr.Plot(
                    label="Refined depth as a point cloud (coloured by the image)", show_label=False
                )
            with gr.Tab("Teaching view"):
                gr.Markdown(
                    "Click a pixel to see its 13x13 attention window at the frame shown above "
                    "(the weights that produced that frame)."
                )
                with gr.Row():
                    inspect_img = gr.Image(
                        label="Depth at this frame (click a pixel)",
                        type="numpy",
                        format="png",
                        interactive=False,
                        elem_id="inspect_view",
                    )
                    inspect_md = gr.Markdown("", elem_id="inspect_text")
                inspect_plot = gr.Plot(label="Attention window", show_label=False)
            with gr.Tab("Downloads"):
                downloads_md = gr.Markdown(
                    "The downloads are prepared when a run ends.", elem_id="downloads_note"
                )
                files = gr.File(label="Animation, refined depth, point cloud, metrics",
                                file_count="multiple", interactive=False)  # fmt: skip

        sparse_widgets = [mode, n_points, n_lines, seed]
        run_outputs = [frame, caption, scrub, play_btn, table, chart, cloud, files, metrics_note,
                       inspect_img, inspect_md, inspect_plot, ablation_btn,
                       downloads_md]  # fmt: skip

        # ---------------------------------------------------------------- formatting
        def points_updates(state: demo.Session, choice: demo.SparseChoice) -> dict:
            inputs = demo.build_sparse(pipeline, state, choice)
            return {
                points_view: demo.points_preview(state, inputs),
                plan_md: demo.plan_text(inputs),
            }

        def cleared_run() -> dict:
            return {
                frame: None,
                caption: "",
                scrub: gr.Slider(minimum=0, maximum=1, value=0, interactive=False),
                play_btn: gr.Button("Play", interactive=False),
                table: EMPTY_TABLE,
                chart: None,
                cloud: None,
                files: None,
                metrics_note: "",
                inspect_img: None,
                inspect_md: "",
                inspect_plot: None,
                ablation_btn: gr.Button(interactive=False),
                downloads_md: "The downloads are prepared when a run ends.",
            }

        def scene_updates(
            old: demo.Session, scene: demo.Scene, choice: demo.SparseChoice, source: str
        ) -> dict:
            demo_run.release(old)
            state = demo.new_session(scene)
            background = demo.editor_background(scene)
            has_gt = scene.gt is not None
            choice = demo.SparseChoice(
                demo.default_mode(scene, choice.mode), choice.n_points, choice.n_lines, choice.seed
            )
            return {
                session: state,
                scene_md: demo.scene_text(scene),
                editor: {"background": background, "layers": [], "composite": background},
                click_md: "" if has_gt else "No ground truth: click the image to add points.",
                point_depth: gr.Number(value=None, visible=not has_gt),
                mode: choice.mode,
                init_source: gr.Radio(
                    choices=demo.init_sources(available(), has_gt),
                    value=demo.valid_init_source(source, available(), has_gt),
                ),
                **points_updates(state, choice),
                **cleared_run(),
                table: gr.Dataframe(value=EMPTY_TABLE, visible=has_gt),
                chart: gr.Plot(value=None, visible=has_gt),
                ablation_btn: gr.Button(interactive=False, visible=has_gt),
                metrics_note: "" if has_gt else "No ground truth: metrics are hidden.",
            }

        def no_scene_updates(old: demo.Session, message: str = NO_SCENE) -> dict:
            """Everything back to the empty page (a cleared image)."""
            demo_run.release(old)
            return {
                session: demo.Session(),
                scene_md: message,
                editor: None,
                click_md: "",
                point_depth: gr.Number(value=None, visible=False),
                points_view: None,
                plan_md: "",
                mode: gr.skip(),
                init_source: gr.Radio(choices=demo.init_sources(available())),
                **cleared_run(),
            }

        scene_outputs = [session, scene_md, editor, click_md, point_depth, mode, init_source,
                         points_view, plan_md, *run_outputs]  # fmt: skip

        # ---------------------------------------------------------------- loading
        def load_any(
            state: demo.Session,
            choice: demo.SparseChoice,
            source: str,
            load: Callable[[demo.DepthEstimator | None, str | None], demo.Scene],
        ) -> dict:
            """Load a scene with the chosen initial depth; warnings become toasts.

            A file that cannot be used is named in a toast and under the scene; the scene
            already loaded (and its points) stays, nothing else changes.
            """
            estimator, unavailable = demo.pick_estimator(source, available())
            if unavailable:
                gr.Warning(unavailable)
            try:
                scene = load(estimator, demo.INIT_SIMULATED.get(source))
            except ValueError as error:
                gr.Warning(str(error))
                kept = "" if state.scene is None else demo.scene_text(state.scene) + "\n\n"
                suffix = " The scene above is kept." if state.scene is not None else ""
                return {**_skip(scene_outputs), scene_md: f"{kept}⚠️ {error}.{suffix}"}
            for note in demo.warning_notes(scene):
                gr.Warning(note)
            return scene_updates(state, scene, choice, source)

        def on_example(index: int | None, side: float, state: demo.Session, *widgets: Any) -> dict:
            *sparse_values, source = widgets
            if index is None or not 0 <= int(index) < len(examples):
                raise _error(f"There is no example number {index}.")
            example = examples[int(index)]

            def load(estimator: Any, quality: str | None) -> demo.Scene:
                return demo.load_example(
                    pipeline, example, int(side), estimator=estimator, simulated_quality=quality
                )

            updates = load_any(state, _choice(*sparse_values), source or demo.INIT_BUNDLED, load)
            if isinstance(updates[session], dict):  # gr.skip(): the file could not be used
                return {**updates, **_skip([image_file, depth_file, units, current_example])}
            return {
                **updates,
                image_file: str(example.image),
                depth_file: None if example.depth is None else str(example.depth),
                units: demo.unit_choice(example.units),
                current_example: int(index),
            }

        def on_load(
            image: str | None,
            depth: str | None,
            unit: str,
            source: str,
            init: str | None,
            side: float,
            example_index: int | None,
            state: demo.Session,
            *widgets: Any,
        ) -> dict:
            example = None if example_index is None else examples[int(example_index)]
            if example is not None:  # a gallery scene keeps its camera and title
                image, depth = str(example.image), example.depth and str(example.depth)
            if image is None:
                message = NO_SCENE
                if depth is not None:
                    message = "Ground truth received: now upload the image it belongs to."
                return no_scene_updates(state, message)
            if source == demo.INIT_UPLOADED and init is None:
                gr.Warning("Upload the initial depth file; using the bundled MDE meanwhile.")

            def load(estimator: Any, quality: str | None) -> demo.Scene:
                return demo.load_scene(
                    pipeline,
                    image,
                    depth,
                    units=demo.UNIT_CHOICES.get(unit, None if example is None else example.units),
                    init_depth_path=init if source == demo.INIT_UPLOADED else None,
                    long_side=int(side),
                    intrinsics=None if example is None else example.intrinsics,
                    name=None if example is None else example.title,
                    estimator=estimator,
                    simulated_quality=quality,
                )

            return load_any(state, _choice(*widgets), source or demo.INIT_BUNDLED, load)

        def on_upload(*values: Any) -> dict:
            """A file was uploaded or cleared: a new scene, or (no image) the empty page."""
            image, depth, unit, source, init, side, example_index, state, *rest = values
            if image is None and example_index is not None:  # the example's image cleared
                return {**no_scene_updates(state), depth_file: None, current_example: None}
            updates = on_load(image, depth, unit, source, init, side, None, state, *rest)
            failed = isinstance(updates[session], dict)  # gr.skip(): the scene was kept
            example_after = gr.skip() if failed else None
            return {**updates, depth_file: gr.skip(), current_example: example_after}

        load_inputs = [image_file, depth_file, units, init_source, init_file, long_side,
                       current_example, session, *sparse_widgets]  # fmt: skip

        def on_gallery(evt: gr.SelectData) -> int:
            return int(evt.index)

        gallery.select(on_gallery, None, example_index, api_visibility="private").then(
            on_example,
            [example_index, long_side, session, *sparse_widgets, init_source],
            [*scene_outputs, image_file, depth_file, units, current_example],
            api_name="load_example",
        )
        gr.on(
            [image_file.upload, image_file.clear, depth_file.upload, depth_file.clear],
            on_upload,
            load_inputs,
            [*scene_outputs, depth_file, current_example],
            api_name="upload",
        )
        gr.on(
            [init_file.upload, units.input, init_source.input, long_side.release],
            on_load,
            load_inputs,
            scene_outputs,
            api_name="reload",
        )

        def on_page_load() -> dict:
            """A new page offers the optional MDEs loaded by now (never waits for them)."""
            return {
                init_source: gr.Radio(
                    choices=demo.init_sources(available()),
                    value=demo.default_init_source(available()),
                )
            }

        app.load(
            on_page_load, None, [init_source], api_visibility="private", show_progress="hidden"
        )

        # ---------------------------------------------------------------- points
        def on_sparse(state: demo.Session, *widgets: Any) -> dict:
            if state.scene is None:
                return {points_view: gr.skip(), plan_md: NO_SCENE}
            try:
                return points_updates(state, _choice(*widgets))
            except ValueError as error:
                raise _error(error) from error

        def on_points_slider(value: float) -> int:
            return demo.points_from_slider(value)

        def on_points_number(value: float | None) -> float:
            return demo.slider_from_points(int(value or 1))

        points_slider.release(on_points_slider, points_slider, n_points, api_visibility="private")
        n_points.change(on_points_number, n_points, points_slider, api_visibility="private")
        gr.on(
            [mode.change, n_points.change, n_lines.release, seed.change],
            on_sparse,
            [session, *sparse_widgets],
            [points_view, plan_md],
            api_name="points",
        )

        click_outputs = [session, click_md, point_depth, points_view, plan_md]

        def on_click(
            state: demo.Session,
            sparse_mode: str,
            points: float,
            lines: float,
            seed_value: float,
            evt: gr.SelectData,
        ) -> dict:
            if state.scene is None:
                return _skip(click_outputs, "Load an image first: pick an example or upload one.")
            factor = demo.display_factor(state.scene.shape)
            x, y = demo.to_processing(evt.index, factor, state.scene.shape)
            choice = _choice(sparse_mode, points, lines, seed_value)
            try:
                state, message = demo.toggle_point(state, choice, x, y)
                updates = points_updates(state, choice)
            except ValueError as error:
                raise _error(error) from error
            typed = state.clicks.get(state.selected) if state.selected else None
            visible = typed is not None or state.scene.gt is None
            return {
                session: state,
                click_md: message,
                point_depth: gr.Number(value=typed, visible=visible),
                **updates,
            }

        points_view.select(
            on_click, [session, *sparse_widgets], click_outputs, api_visibility="private"
        )

        def on_point_depth(state: demo.Session, value: float | None, *widgets: Any) -> dict:
            """The typed depth, committed when the box loses focus or on Enter."""
            outputs = [session, points_view, plan_md]
            if state.scene is None or state.selected is None:
                return _skip(outputs)
            try:
                state = demo.set_point_depth(state, value)
                return {session: state, **points_updates(state, _choice(*widgets))}
            except ValueError as error:
                return _skip(outputs, str(error))

        gr.on(
            [point_depth.submit, point_depth.blur],
            on_point_depth,
            [session, point_depth, *sparse_widgets],
            [session, points_view, plan_md],
            api_name="point_depth",
            trigger_mode="always_last",
        )

        def on_clear_points(state: demo.Session, *widgets: Any) -> dict:
            if state.scene is None:
                return {**_skip(click_outputs), click_md: "Nothing to reset: no scene yet."}
            state = demo.clear_points(state)
            return {session: state, click_md: "", point_depth: None,
                    **points_updates(state, _choice(*widgets))}  # fmt: skip

        clear_points_btn.click(
            on_clear_points, [session, *sparse_widgets], click_outputs, api_name="clear_points"
        )

        # ---------------------------------------------------------------- hole
        hole_outputs = [session, editor, points_view, plan_md]

        def on_hole(state: demo.Session, value: dict | None, *widgets: Any) -> dict:
            if state.scene is None:
                return _skip(hole_outputs)
            layers = (value or {}).get("layers") or []
            try:
                hole = demo.hole_from_layers(layers, state.scene.shape)
                state = demo.set_hole(state, hole)
                return {session: state, editor: gr.skip(),
                        **points_updates(state, _choice(*widgets))}  # fmt: skip
            except ValueError as error:
                raise _error(error) from error

        editor.input(
            on_hole,
            [session, editor, *sparse_widgets],
            hole_outputs,
            api_name="paint_hole",
            trigger_mode="always_last",
        )

        def editor_value(scene: demo.Scene, hole: Any) -> dict:
            background = demo.editor_background(scene)
            factor = demo.display_factor(scene.shape)
            layers = [] if hole is None else [demo.hole_layer(hole, factor)]
            return {"background": background, "layers": layers, "composite": background}

        def on_centre_hole(state: demo.Session, *widgets: Any) -> dict:
            if state.scene is None:
                return _skip(hole_outputs, "Load an image first: pick an example or upload one.")
            state = demo.set_hole(state, demo.centre_hole(state.scene.shape))
            return {session: state, editor: editor_value(state.scene, state.hole),
                    **points_updates(state, _choice(*widgets))}  # fmt: skip

        def on_clear_hole(state: demo.Session, *widgets: Any) -> dict:
            if state.scene is None:
                return _skip(hole_outputs)
            state = demo.set_hole(state, None)
            return {session: state, editor: editor_value(state.scene, None),
                    **points_updates(state, _choice(*widgets))}  # fmt: skip

        centre_btn.click(
            on_centre_hole, [session, *sparse_widgets], hole_outputs, api_name="centre_hole"
        )
        clear_hole_btn.click(
            on_clear_hole, [session, *sparse_widgets], hole_outputs, api_name="clear_hole"
        )

        # ---------------------------------------------------------------- run
        def run_duration(state: demo.Session, painted: dict | None, *widgets: Any) -> int:
            try:
                inputs = demo.build_sparse(pipeline, state, _choice(*widgets[:4]))
            except ValueError:
                return 30
            pixels = inputs.sparse.size
            return demo_run.run_duration_s(inputs.schedule, pixels, GPU_SECONDS_PER_MPX_ITERATION)

        def committed(state: demo.Session, painted: dict | None, typed: float | None) -> Any:
            """The session with what the page shows: the brush's strokes and the typed depth."""
            if state.scene is None:
                return state
            if painted is not None:
                layers = painted.get("layers") or []
                state = demo.set_hole(state, demo.hole_from_layers(layers, state.scene.shape))
            if state.selected is not None and typed is not None:
                state = demo.set_point_depth(state, typed)
            return state

        @_gpu(duration=run_duration)
        def on_run(state: demo.Session, painted: dict | None, *widgets: Any) -> Any:
            *choice_values, ablation, typed = widgets
            try:
                state = committed(state, painted, typed)
                inputs = demo.build_sparse(pipeline, state, _choice(*choice_values))
                updates = demo_run.run_steps(pipeline, state, inputs, use_mask=not ablation)
                first = next(updates)
            except ValueError as error:
                raise _error(error) from error
            yield {
                **cleared_run(),
                session: state,
                frame: first.image,
                caption: first.caption,
                scrub: gr.Slider(minimum=0, maximum=first.total - 1, value=0, interactive=False),
                metrics_note: "Running…",
            }
            for update in updates:
                if update.summary is None:
                    yield {frame: update.image, caption: update.caption, scrub: update.index,
                           metrics_note: update.note or gr.skip()}  # fmt: skip
                    continue
                summary = update.summary
                yield {
                    session: state,
                    scrub: gr.Slider(
                        minimum=0, maximum=update.total - 1, value=update.index, interactive=True
                    ),
                    play_btn: gr.Button("Play", interactive=True),
                    table: {"headers": demo_run.TABLE_HEADERS, "data": summary.table},
                    chart: summary.iteration_figure,
                    metrics_note: summary.note,
                    ablation_btn: gr.Button(interactive=state.scene.gt is not None),
                    inspect_img: demo_run.inspect_view(state.scene, state.run, update.index),
                    downloads_md: "⏳ Writing the animation, depth files and point cloud…",
                }

        run_event = run_btn.click(
            on_run,
            [session, editor, *sparse_widgets, no_mask, point_depth],
            [session, *run_outputs],
            api_name="run",
            concurrency_limit=CONCURRENCY,
        )

        def on_extras(state: demo.Session) -> dict:
            """Downloads and point cloud, made right after the page is complete."""
            outputs = [cloud, files, downloads_md]
            record = state.run
            if record is None or record.summary is None:
                return _skip(outputs)
            try:
                extras = demo_run.run_extras(state)
            except (OSError, ValueError):  # the scene was cleared meanwhile: folder gone
                return _skip(outputs)
            if state.run is not record or not all(f.is_file() for f in extras.files):
                return _skip(outputs)  # a newer scene or run replaced this one
            return {
                cloud: extras.point_cloud,
                files: [str(f) for f in extras.files],
                downloads_md: "Depth in millimetres (16-bit PNG) and metres (.npy), a coloured "
                "preview, the animation, the point cloud (.ply) and metrics.json.",
            }

        run_event.success(
            on_extras, [session], [cloud, files, downloads_md], api_name="downloads",
            show_progress="minimal",
        )  # fmt: skip

        def on_stop(state: demo.Session) -> Any:
            count = demo_run.recorded_frames(state)
            if count < 2:
                return gr.Slider()
            state.frame = count - 1
            return gr.Slider(minimum=0, maximum=count - 1, value=count - 1, interactive=True)

        # Stop (like a closed tab) cancels the run: the generator is closed between two
        # iterations, so its worker is free for the next request; frames so far stay and
        # become scrubbable.
        stop_btn.click(
            on_stop, [session], [scrub], cancels=[run_event], api_visibility="private", queue=False
        )

        def on_ablation(state: demo.Session) -> dict:
            outputs = [table, chart, ablation_btn]
            try:
                summary = demo_run.add_ablation(pipeline, state)
            except ValueError as error:
                return _skip(outputs, str(error))
            return {
                table: {"headers": demo_run.TABLE_HEADERS, "data": summary.table},
                chart: summary.iteration_figure,
                ablation_btn: gr.Button(interactive=False),
            }

        ablation_btn.click(
            _gpu(duration=60)(on_ablation), [session], [table, chart, ablation_btn],
            api_name="ablation", concurrency_limit=CONCURRENCY,
        )  # fmt: skip

        # ---------------------------------------------------------------- scrub / play
        scrub_outputs = [frame, caption, inspect_img, inspect_md, inspect_plot]

        def on_scrub(state: demo.Session, index: float | None) -> dict:
            if state.run is None or index is None:
                return _skip(scrub_outputs)
            try:
                shown, image, text = demo_run.show_frame(state, int(index))
            except ValueError as error:
                return _skip(scrub_outputs, str(error))
            updates = {frame: image, caption: text, inspect_md: gr.skip(), inspect_plot: gr.skip()}
            try:
                if state.inspected is None:
                    raise ValueError("no pixel inspected")
                updates.update(inspect_updates(state, *state.inspected))
            except ValueError:
                updates[inspect_img] = demo_run.inspect_view(state.scene, state.run, shown)
            return updates

        # .input: dragging, the slider's number box and the arrow keys; .release: a click.
        gr.on(
            [scrub.input, scrub.release],
            _gpu(duration=20)(on_scrub),
            [session, scrub],
            scrub_outputs,
            api_name="frame",
            trigger_mode="always_last",
            show_progress="hidden",
        )

        def on_play(state: demo.Session, is_playing: bool) -> dict:
            if is_playing or state.run is None:
                return {timer: gr.Timer(active=False), play_btn: "Play", playing: False,
                        scrub: gr.skip(), frame: gr.skip(), caption: gr.skip()}  # fmt: skip
            start = 0 if state.frame >= len(state.run.states) - 1 else state.frame
            shown, image, text = demo_run.show_frame(state, start)
            return {timer: gr.Timer(active=True), play_btn: "Pause", playing: True,
                    scrub: shown, frame: image, caption: text}  # fmt: skip

        play_btn.click(
            on_play,
            [session, playing],
            [timer, play_btn, playing, scrub, frame, caption],
            api_visibility="private",
        )

        def on_tick(state: demo.Session) -> dict:
            stopped = {timer: gr.Timer(active=False), play_btn: "Play", playing: False}
            if state.run is None or not state.run.states:
                return {**stopped, frame: gr.skip(), caption: gr.skip(), scrub: gr.skip()}
            last = len(state.run.states) - 1
            shown, image, text = demo_run.show_frame(state, min(state.frame + 1, last))
            updates = {frame: image, caption: text, scrub: shown}
            if shown >= last:
                updates.update(stopped)
            return updates

        timer.tick(
            on_tick,
            [session],
            [frame, caption, scrub, timer, play_btn, playing],
            api_visibility="private",
            concurrency_limit=None,
            show_progress="hidden",
        )

        # ---------------------------------------------------------------- teaching view
        def inspect_updates(state: demo.Session, x: int, y: int) -> dict:
            inspection = demo_run.inspect_pixel(pipeline, state, state.frame, x, y)
            return {
                inspect_img: inspection.image,
                inspect_md: inspection.text,
                inspect_plot: inspection.figure,
            }

        inspect_outputs = [session, inspect_img, inspect_md, inspect_plot]

        @_gpu(duration=30)
        def on_inspect(state: demo.Session, evt: gr.SelectData) -> dict:
            if state.scene is None or state.run is None:
                return _skip(inspect_outputs, "Run the refinement first; then click a pixel.")
            factor = demo.display_factor(state.scene.shape)
            if float(evt.index[0]) >= state.scene.shape[1] * factor:
                return _skip(inspect_outputs)  # a click on the colour bar
            x, y = demo.to_processing(evt.index, factor, state.scene.shape)
            try:
                updates = inspect_updates(state, x, y)
            except ValueError as error:
                return _skip(inspect_outputs, str(error))
            state.inspected = (x, y)
            return {session: state, **updates}

        inspect_img.select(on_inspect, [session], inspect_outputs, api_visibility="private")
    return app


def main() -> None:
    """Command line: load the pipeline once and serve the app."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--host", default=None, help="server name, e.g. 0.0.0.0")
    parser.add_argument("--port", type=int, default=None, help="server port (default 7860)")
    parser.add_argument("--untrained", action="store_true", help="random weights (development)")
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
        except (FileNotFoundError, ValueError) as error:
            raise SystemExit(
                f"Could not load the bundled checkpoints ({error}). Train them first, or run "
                "`python app.py --untrained` to try the interface with random weights."
            ) from error
    estimators: demo.EstimatorLoader | None = None
    if args.depth_anything != "off":

        def report(notes: tuple[str, ...]) -> None:
            for note in notes:
                logging.getLogger(__name__).warning("%s; it is not offered in the app", note)

        estimators = demo.EstimatorLoader(
            lambda: demo.load_optional_estimators(pipeline.device, args.depth_anything), report
        ).start()  # in the background: the page never waits for the download
    blocks = build_demo(pipeline, estimators=estimators)
    blocks.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE).launch(
        server_name=args.host, server_port=args.port, **launch_kwargs()
    )


if __name__ == "__main__":
    main()
