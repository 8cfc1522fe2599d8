"""Sections of the main page, each a small function called in order by ``streamlit_app.py``."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import numpy as np
import streamlit as st

from seg.errors import SegError
from seg.ui import canvas, config, pipeline, uploads, views
from seg.ui import state as keys
from seg.ui.lifetime import release_on_disconnect, watch_session
from seg.ui.samples import DEFAULT_SAMPLE, SAMPLES, load_sample
from seg.ui.state import ClassSpec, ImageRecord
from seg.ui.text import escape_markdown


@dataclass
class Run:
    """Bookkeeping of one script run: when it started and what each step cost (ms)."""

    started: float = field(default_factory=time.perf_counter)
    timings: dict = field(default_factory=dict)
    paused: bool = False
    error: str | None = None

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000


# --------------------------------------------------------------------------- start


def _sample_classes(name: str) -> list[tuple[str, str]]:
    from seg.render import PALETTE

    return list(zip(SAMPLES[name].classes, PALETTE))


def begin_run(started: float | None = None) -> Run:
    """Create the session's state on its first run (bundled sample, two classes, default settings).

    ``started`` is the ``time.perf_counter()`` at the top of the script (default: now).
    """
    from seg.ui.settings import init_settings

    watch_session()
    run = Run() if started is None else Run(started=started)
    state = st.session_state
    keys.restore_widgets(state)
    keys.init_state(state, default_classes=_sample_classes(DEFAULT_SAMPLE))
    keys.forget_released(state)
    init_settings(state)
    for key, value in (
        (keys.W_TOOL, "freedraw"),
        (keys.W_WIDTH, 12),
        (keys.W_VIEW, views.SEGMENTATION),
        (keys.W_OPACITY, 0.45),
        (keys.W_LIVE, True),
        (keys.W_FRAME, 0),
    ):
        state.setdefault(key, value)
    if keys.IMAGE not in state:
        state[keys.W_SAMPLE] = DEFAULT_SAMPLE
        keys.set_image(state, load_sample(DEFAULT_SAMPLE))
    state.setdefault(keys.W_SAMPLE, None)
    return run


def begin_fragment() -> Run:
    """Start a run of the workspace fragment (alone after a stroke, or within a page run)."""
    watch_session()
    keys.forget_released(st.session_state)
    return Run()


def show_flash() -> None:
    """Messages queued by callbacks (a refused rename, a resumed file) shown once."""
    for kind, message in st.session_state[keys.FLASH]:
        getattr(st, kind)(escape_markdown(message))  # messages quote user text (names, files)
    st.session_state[keys.FLASH] = []


# --------------------------------------------------------------------------- image


def _on_sample() -> None:
    name = st.session_state.get(keys.W_SAMPLE)
    if name not in SAMPLES:
        return
    state = st.session_state
    keys.set_image(state, load_sample(name))
    if state.get(keys.MODEL_SOURCE) != "uploaded":
        state[keys.CLASSES] = [ClassSpec(keys.new_class_id(state), n, c) for n, c in _sample_classes(name)]
        state[keys.TRAIN_KEY] = None


def image_source() -> ImageRecord:
    """Sample picker, uploader and a one-line description of the current image."""
    st.selectbox(
        "Sample image",
        list(SAMPLES),
        key=keys.W_SAMPLE,
        on_change=_on_sample,
        format_func=lambda n: SAMPLES[n].title,
        placeholder="Choose a sample…",
    )
    uploaded = st.file_uploader(
        "Or open your own image",
        type=uploads.IMAGE_TYPES,
        key=keys.W_IMAGE_UPLOAD,
        on_change=uploads.on_image_upload,
        help=(
            f"PNG, JPEG, TIFF or BMP; 8/16-bit or float, grey, RGB or multichannel; multi-page TIFF stacks. "
            f"Up to {config.MAX_FRAME_PIXELS / 1e6:.0f} megapixels per frame and "
            f"{config.MAX_TOTAL_PIXELS / 1e6:.0f} in total."
        ),
    )
    uploads.show_upload_error(keys.W_IMAGE_UPLOAD, uploaded)
    record: ImageRecord = st.session_state[keys.IMAGE]
    t, h, w = record.shape
    frames = f"{t} {'slices' if record.is_volume else 'frames'} · " if t > 1 else ""
    st.caption(
        escape_markdown(f"{record.name} · {frames}{w}×{h} px · {record.n_channels} channel(s) · {record.frames.dtype}")
    )
    return record


def frame_picker(record: ImageRecord) -> int:
    """Frame slider for stacks, "Slice (z)" slider for volumes (0 for single images)."""
    if record.n_frames <= 1:
        return 0
    state = st.session_state
    state[keys.W_FRAME] = min(int(state.get(keys.W_FRAME, 0)), record.n_frames - 1)
    noun = "slice" if record.is_volume else "frame"
    frame = st.slider(
        "Slice (z)" if record.is_volume else "Frame",
        0,
        record.n_frames - 1,
        key=keys.W_FRAME,
        help=f"Strokes on any {noun} train the same model.",
    )
    drawn = sorted(f for f, d in state[keys.DRAWINGS].items() if d and d.get("objects"))
    # Always the same element in the same place: an element that appears above the canvas only
    # on some runs makes Streamlit remount the canvas, which drops a stroke still in flight.
    with st.container(key="frames_caption"):
        st.caption(f"Strokes on {noun}(s) " + ", ".join(str(f) for f in drawn) if drawn else "No strokes yet")
    return int(frame)


# ----------------------------------------------------------- the pen (sidebar) and the view bar (above the canvas)


@dataclass(frozen=True)
class Pen:
    """What a stroke draws: the active class, the tool and the width in image pixels."""

    active: ClassSpec
    tool: str
    width: float

    @property
    def eraser(self) -> bool:
        return self.tool == "eraser"


@dataclass(frozen=True)
class LiveUpdate:
    """Whether every stroke retrains (live), and whether "Update" was pressed."""

    live: bool
    clicked: bool

    @property
    def due(self) -> bool:
        return self.live or self.clicked


def drawing_tools() -> tuple[str, int]:
    """Tool (freehand / line / rectangle / eraser) and stroke width in image pixels."""
    tool = st.segmented_control(
        "Tool",
        list(keys.TOOLS),
        key=keys.W_TOOL,
        format_func=keys.TOOLS.__getitem__,
        required=True,
        help="The eraser removes scribbles (its pixels become unlabelled).",
    )
    width = st.slider(
        "Stroke width", 1, 60, key=keys.W_WIDTH, help="In image pixels; the canvas shows it at the current zoom."
    )
    return tool or "freedraw", int(width)


def view_controls(classes) -> views.Look:
    """What the canvas shows under the strokes, and how strongly."""
    options = views.view_options(classes)
    if st.session_state.get(keys.W_VIEW) not in options:
        st.session_state[keys.W_VIEW] = views.SEGMENTATION
    view = st.selectbox("Show", options, key=keys.W_VIEW, format_func=lambda o: views.view_title(o, classes), width=300)
    opacity = st.slider("Opacity", 0.0, 1.0, key=keys.W_OPACITY, step=0.05, width=160)
    return views.Look(view, float(opacity))


def live_controls() -> LiveUpdate:
    """Live-update switch and the explicit Update button."""
    live = st.toggle(
        "Live update",
        key=keys.W_LIVE,
        help="Retrain and segment after every stroke. Switch off to draw several strokes, then press Update.",
    )
    clicked = st.button(
        "Update",
        key=keys.W_UPDATE,
        disabled=live,
        icon=":material/refresh:",
        help="Retrain on the strokes so far and segment what the canvas shows.",
    )
    return LiveUpdate(bool(live), bool(clicked))


def drawing_controls() -> Pen:
    """The pen, in the sidebar: active class, tool (freehand / line / rectangle / eraser), width."""
    from seg.ui.classes import active_class_picker

    active = active_class_picker()
    tool, width = drawing_tools()
    return Pen(active, tool, width)


def view_bar(classes) -> tuple[views.Look, LiveUpdate]:
    """The controls above the canvas: view, opacity, live update."""
    with st.container(key="viewbar", horizontal=True, vertical_alignment="bottom", gap="medium"):
        look = view_controls(classes)
        live = live_controls()
    return look, live


def resume_panel() -> None:
    """Uploads that continue earlier work: an annotations file or a model bundle."""
    with st.expander("Resume or reuse", key="resume_panel"):
        annotations = st.file_uploader(
            "Annotations (.json)",
            type=uploads.ANNOTATION_TYPES,
            key=keys.W_ANNOTATIONS_UPLOAD,
            on_change=uploads.on_annotations_upload,
            help="A file from 'Annotations JSON' below: restores classes and strokes on the same image.",
        )
        uploads.show_upload_error(keys.W_ANNOTATIONS_UPLOAD, annotations)
        model = st.file_uploader(
            "Model (.segmodel)",
            type=uploads.MODEL_TYPES,
            key=keys.W_MODEL_UPLOAD,
            on_change=uploads.on_model_upload,
            help="A model bundle saved by this app. Its classes and settings become the current ones; "
            "new strokes retrain it. Pickle/joblib files are refused.",
        )
        uploads.show_upload_error(keys.W_MODEL_UPLOAD, model)


# --------------------------------------------------------------------------- strokes -> segmentation


def read_strokes(record: ImageRecord) -> tuple[pipeline.Strokes, dict]:
    """The strokes of every frame (image pixels), merged with what the canvas reported before
    the canvas is drawn again."""
    state = st.session_state
    canvas.sync_canvas(state, record.digest)
    strokes = pipeline.collect_strokes(
        state[keys.DRAWINGS], pipeline.image_fit(record), state[keys.CLASSES], state[keys.PARSED]
    )
    return strokes, pipeline.label_images(state, record, strokes)


def segment(
    run: Run,
    scene: pipeline.Scene,
    strokes: pipeline.Strokes,
    labels: dict,
    settings: pipeline.Settings,
    live: LiveUpdate,
) -> None:
    """Retrain/predict if live (or Update was pressed); records timings in ``run``."""
    if not live.due:
        run.paused = True
        return
    done = pipeline.refresh(st.session_state, scene, strokes, labels, st.session_state[keys.CLASSES], settings)
    run.timings.update(features=done.features_ms, train=done.train_ms, predict=done.predict_ms)


def current_prediction(record: ImageRecord) -> pipeline.Prediction | None:
    """The session's prediction if it belongs to ``record``."""
    prediction = st.session_state[keys.PREDICTION]
    return prediction if prediction is not None and prediction.key.is_for(record) else None


def show_canvas(run: Run, scene: pipeline.Scene, pen: Pen, look: views.Look, layers=()) -> tuple:
    """The canvas with the viewport's picture + current view (+ the panels' ``layers``, see
    :mod:`seg.ui.marks`) as background; returns the background cache key."""
    from seg.strokes import ERASER_COLOR

    state = st.session_state
    record = scene.record
    background, bg_key, render_ms = views.background_bytes(
        state, scene, current_prediction(record), look, state[keys.CLASSES], layers
    )
    run.timings["render"] = render_ms
    key = canvas.canvas_key(record.digest, scene.frame, int(state[keys.CANVAS_NONCE]), scene.viewport)
    mounted = state[keys.CANVAS]
    if mounted is None or mounted.key != key or key not in state:
        # A canvas being mounted (new key, or its state dropped after another page was shown)
        # starts from the stored strokes. For a mounted canvas the drawing stays fixed: changing
        # it would reload the canvas (and drop a stroke in progress).
        mounted = canvas.MountedCanvas.mount(
            key, record.digest, scene.frame, scene.viewport, state[keys.DRAWINGS].get(scene.frame)
        )
        state[keys.CANVAS] = mounted
    st.space("small")  # room for the canvas's own toolbar, which appears above its top-right corner
    with st.container(key="canvas_area"):
        canvas.draw_canvas(
            mounted=mounted,
            background=background,
            tool="freedraw" if pen.eraser else pen.tool,
            stroke_color=ERASER_COLOR if pen.eraser else pen.active.color,
            stroke_width=max(0.25, pen.width * scene.viewport.zoom),
        )
    return bg_key


def whole_image_panel(scene: pipeline.Scene, prediction: pipeline.Prediction | None) -> None:
    """For a large frame: say what the overlay shows and offer the whole-frame segmentation."""
    if prediction is None or not prediction.tiled or prediction.frame != scene.frame:
        return
    state = st.session_state
    with st.container(key="whole_image", horizontal=True, vertical_alignment="center"):
        if prediction.display_labels is None:
            st.caption(
                "Zoomed out too far for a live overlay of this large image (its feature tiles would "
                "not fit in memory): zoom in to see the segmentation after every stroke, or segment "
                "the whole image."
            )
        elif not prediction.has_labels:
            st.caption(
                "The overlay shows the segmentation of what is on screen. Downloads (mask, overlay, "
                "probabilities), measurements and objects need the whole image segmented."
            )
        if not prediction.has_labels and st.button(
            "Segment whole image", key=keys.W_SEGMENT_WHOLE, icon=":material/select_all:"
        ):
            bar = st.progress(0.0, text="Segmenting the whole image…")

            def progress(done: int, total: int) -> None:
                bar.progress(done / total, text=f"Segmenting tile {done}/{total}")

            whole = prediction.compute_whole(progress=progress)
            bar.empty()
            state[keys.WHOLE] = whole
            state[keys.PREDICTION] = None  # predicted again next run: the overlay then comes from these labels
            st.rerun()


def count_update(run: Run, strokes: pipeline.Strokes, bg_key: tuple) -> int:
    """Bump "update #N" when the strokes, model, prediction or picture changed in this run."""
    state = st.session_state
    prediction = state[keys.PREDICTION]
    signature = (
        hash(strokes.all),
        state[keys.MODEL_VERSION],
        prediction.key if prediction else None,
        bg_key,
        state[keys.WHOLE].key if state[keys.WHOLE] is not None else None,
    )
    if signature != state.get(keys.SIGNATURE):
        state[keys.SIGNATURE] = signature
        state[keys.UPDATE] = int(state[keys.UPDATE]) + 1
        state[keys.TIMINGS] = dict(run.timings)
    return int(state[keys.UPDATE])


def model_summary() -> None:
    """One line about the model in use (plain text: class names are user input)."""
    state = st.session_state
    model = state[keys.MODEL]
    if model is None:
        return
    from seg.persist import describe_model

    info = describe_model(model)
    source = "Uploaded model" if state[keys.MODEL_SOURCE] == "uploaded" else "Model"
    classes = ", ".join(c["name"] for c in info["classes"])
    pixels = model.training.get("labelled_pixels") if isinstance(model.training, dict) else None
    trained = f" · trained on {sum(pixels.values()):,} scribbled pixels" if isinstance(pixels, dict) else ""
    st.caption(
        escape_markdown(
            f"{source}: {len(info['classes'])} classes ({classes}) · {info['n_features']} features "
            f"({info['feature_preset']}) · {info['trees']} trees{trained}"
        )
    )


def prepare_next_stroke(
    run: Run, scene: pipeline.Scene, labels: dict, settings: pipeline.Settings | None, live: LiveUpdate
) -> None:
    """Work done after the page is shown so that the next stroke is fast.

    Computes the features the next stroke needs (the current frame's stack, or the feature tiles
    under the viewport of a large frame, when they fit the budget; for a volume in 3-D, the
    neighbouring slab in the background), so that the first stroke then
    only trains and predicts, and, once per server process, loads the forest kernels and
    scikit-learn. The page is already visible; the status marker below is written only afterwards.
    """
    if not live.live or settings is None:
        return
    start = time.perf_counter()
    _warm_engine()
    feature_settings, normalization, volume = settings.features, settings.normalization, settings.volume
    model = st.session_state[keys.MODEL]
    if model is not None:  # predictions use the model's own settings
        feature_settings, normalization, volume = model.feature_settings, model.normalization, model.volume
    sources, spent = pipeline.features_for(  # keeps the features of every frame with strokes
        st.session_state,
        scene.record,
        [scene.frame],
        feature_settings,
        normalization,
        keep=list(labels),
        volume=volume,
    )
    if scene.record.is_volume:  # 3-D: the neighbouring slab, on a background thread
        from seg.ui.volume import compute_slab_ahead

        compute_slab_ahead(st.session_state, scene.record, scene.frame, feature_settings, normalization, volume)
    source = sources[0]
    if not isinstance(source, np.ndarray):
        rows, cols = scene.viewport.display_rows(), scene.viewport.display_columns()
        if source.fits(rows, cols) and not source.ready(rows, cols):
            for tile in source.tiles_under(rows, cols):
                source.tile_features(*tile)
            spent = 1.0
    if spent:
        run.timings["prepare"] = (time.perf_counter() - start) * 1000


@functools.cache
def _warm_engine() -> None:
    # Process-wide and user-independent: compiles/loads the numba kernels and imports
    # scikit-learn once per server, instead of inside somebody's first stroke.
    from seg.forest import warm_up

    warm_up()


def status_placeholder():
    """Reserve the last place on the page for the status marker."""
    return st.container(key="status").empty()


def status_line(placeholder, run: Run, update: int) -> None:
    """The LAST element written in every run: browser tests wait for "update #N" here."""
    timings = st.session_state[keys.TIMINGS]
    parts = [f"ready · update #{update}"]
    if run.paused:
        parts.append("paused: press Update")
    for name in ("features", "train", "predict", "render"):
        if timings.get(name, 0) >= 0.5:  # steps that were skipped or cached are not listed
            parts.append(f"{name} {timings[name]:.0f} ms")
    if "prepare" in run.timings:
        parts.append(f"prepared next stroke {run.timings['prepare']:.0f} ms")
    parts.append(f"run {run.elapsed_ms():.0f} ms")
    placeholder.caption(" · ".join(parts))
    keys.remember_widgets(st.session_state)
    release_on_disconnect(*keys.recomputable(st.session_state))


def guarded(step, *args, **kwargs):
    """Run ``step``; show a SegError as an error message instead of a traceback (returns None)."""
    try:
        return step(*args, **kwargs)
    except SegError as exc:
        st.error(escape_markdown(str(exc)), icon=":material/error:")
        return None
