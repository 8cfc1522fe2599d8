"""The "How good is it?" panel: estimated accuracy, feature importance, suggested settings and
where to label next.

The accuracy estimate (:func:`seg.evaluate.estimate_accuracy`) retrains the forest up to eight
times, about half a second at 1 MP, so it runs when asked and is kept with the model version it
was made for: after a new stroke or other settings it is shown as *stale* until refreshed.
Impurity importance comes with the model at no cost; permutation importance and suggested
settings are on demand too. Everything computed is kept in ``state[keys.ACCURACY]``, a dict released with
the other recomputable caches.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from seg.evaluate.suggest import forest_name, preset_name
from seg.ui import config
from seg.ui import state as keys
from seg.ui.marks import BoxLayer
from seg.ui.state import ClassSpec, ImageRecord, SessionState
from seg.ui.text import escape_markdown
from seg.ui.views import display_rgb
from seg.viewport import Viewport

W_REGION = "w_next_region"
W_BOXES_ON_CANVAS = "w_next_on_canvas"
W_AUTO_ESTIMATE = "w_auto_estimate"
#: Frames up to this size may refresh the estimate after every stroke (0.33-0.43 s at 1 MP with
#: 16 strokes, bench/accuracy_estimate.py, load 2-7): larger ones estimate on request only.
AUTO_ESTIMATE_MAX_PIXELS = 1_100_000
NEXT_PIXELS = 250_000
EXPLAIN = (
    "Estimated share of the **unlabelled** pixels that the model labels right. The forest is "
    "retrained without some of your strokes and predicts them; those results are reweighted to "
    "look like the rest of the image (its mix of predicted classes and of sure and unsure pixels). "
    "The 90 % interval reflects how many strokes the estimate rests on."
)


@dataclass(frozen=True)
class Inputs:
    """What the estimates are made from: the current model and the scribbled frames."""

    version: int  # state[keys.MODEL_VERSION] of the model
    model: Any
    image: np.ndarray  # (T, H, W, C) frames of the record
    labels: np.ndarray  # (T, H, W) scribbles, zeros in frames without strokes
    features: list  # per frame: (H, W, F) float32, TileFeatures (large frame) or None (no strokes)
    proba: list  # per frame: (H, W, K) float32 or None
    class_names: tuple[str, ...]
    unlabelled: np.ndarray | None = None  # (M, K) float32: a large frame's predicted unlabelled pixels


@dataclass(frozen=True)
class Source:
    """What the panel shows results for (cheap to make on every run; the callbacks gather the
    heavy :class:`Inputs` from it only when a button is pressed)."""

    record: ImageRecord
    prediction: Any
    labels: Mapping[int, np.ndarray]  # {frame: (H, W) scribbles}
    classes: Sequence[ClassSpec]
    model: Any
    version: int  # state[keys.MODEL_VERSION] of the model
    viewport: Any = None  # seg.viewport.Viewport the prediction shows

    @property
    def scribbled(self) -> list[int]:
        return sorted(f for f, image in self.labels.items() if image.any())


def gather_inputs(state: SessionState, source: Source) -> Inputs:
    """Everything the estimates need, from the session's caches (features are not recomputed)."""
    from seg.ui import pipeline

    record, prediction, labels, model = source.record, source.prediction, source.labels, source.model
    scribbled = source.scribbled
    stacks, _ = pipeline.features_for(
        state, record, scribbled, model.feature_settings, model.normalization, keep=[prediction.frame]
    )
    n_frames, height, width = record.shape
    label_stack = np.zeros((n_frames, height, width), np.uint16)
    features: list = [None] * n_frames
    proba: list = [None] * n_frames
    for frame, stack in zip(scribbled, stacks):
        label_stack[frame] = labels[frame]
        features[frame] = stack
    unlabelled = None
    if prediction.frame in scribbled and not prediction.tiled:
        proba[prediction.frame] = prediction.probabilities()
    elif prediction.frame in scribbled:
        unlabelled = unlabelled_sample(prediction, labels[prediction.frame], source.viewport)
    names = tuple(c.name for c in source.classes)[: model.n_classes]
    return Inputs(source.version, model, record.frames, label_stack, features, proba, names, unlabelled)


def unlabelled_sample(prediction, labels: np.ndarray, viewport) -> np.ndarray | None:
    """(M, K) float32 probabilities of at most :data:`NEXT_PIXELS` unlabelled pixels of a large
    frame: of the whole frame once it was segmented whole, else of the pixels the canvas shows
    (all that was predicted). None when neither is at hand."""
    coarse = _coarse_probabilities(prediction, viewport)
    if coarse is None:
        return None
    proba, rows, cols = coarse
    free = labels[np.ix_(rows, cols)] == 0
    return np.asarray(proba[free], np.float32)


def _coarse_probabilities(prediction, viewport) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(h, w, K) float32 probabilities of a grid of image pixels, and its rows and columns.

    From the whole frame's probabilities (every ``step``-th row and column, at most
    :data:`NEXT_PIXELS` pixels) when they are at hand, else from the display pixels of the viewport.
    """
    whole = prediction.whole_probabilities()
    if whole is not None:
        height, width = whole.shape[:2]
        step = max(1, math.ceil(math.sqrt(height * width / NEXT_PIXELS)))
        proba = whole[::step, ::step]
        if proba.dtype == np.uint8:
            proba = proba.astype(np.float32) / 255.0
        return proba, np.arange(0, height, step), np.arange(0, width, step)
    shown = prediction.display_probabilities()
    if shown is None:
        return None
    return shown, viewport.display_rows(), viewport.display_columns()


def _keep(state: SessionState, source: Source, name: str, compute) -> None:
    """Run ``compute(inputs)`` and keep its result as ``name`` with the model version, or its error."""
    from seg.errors import SegError

    try:
        value = compute(gather_inputs(state, source))
    except SegError as error:
        state[keys.ACCURACY]["error"] = str(error)
        return
    state[keys.ACCURACY].update({name: value, f"{name}_version": source.version, "error": None})


def estimate(state: SessionState, source: Source) -> None:
    """Compute the accuracy report (button callback)."""
    from seg.evaluate import estimate_accuracy

    model = source.model
    _keep(
        state,
        source,
        "report",
        lambda inputs: estimate_accuracy(
            inputs.image,
            inputs.labels,
            model.feature_settings,
            model.forest_settings,
            class_names=inputs.class_names,
            normalization=model.normalization,
            features=inputs.features,
            proba=inputs.proba,
            unlabelled=inputs.unlabelled,
        ),
    )


def permutation(state: SessionState, source: Source) -> None:
    """Permutation importance on held-out strokes (button callback)."""
    from seg.evaluate import held_out_importance

    model = source.model
    _keep(
        state,
        source,
        "permutation",
        lambda inputs: held_out_importance(
            inputs.image,
            inputs.labels,
            model.feature_settings,
            model.forest_settings,
            normalization=model.normalization,
            features=inputs.features,
        ),
    )


def suggest(state: SessionState, source: Source) -> None:
    """Rank the presets and a few forests by the estimate (button callback)."""
    import dataclasses

    from seg.evaluate import default_candidates, suggest_settings

    # Candidates use the channels the current model uses.
    channels = source.model.feature_settings.channels
    candidates = [(dataclasses.replace(s, channels=channels), f) for s, f in default_candidates()]
    _keep(
        state,
        source,
        "suggestions",
        lambda inputs: suggest_settings(
            inputs.image,
            inputs.labels,
            candidates,
            normalization=inputs.model.normalization,
            class_names=inputs.class_names,
        ),
    )


def use_settings(feature_settings, forest_settings) -> None:
    """Make suggested settings the current ones (button callback); the model retrains."""
    from seg.ui.settings import adopt_settings

    adopt_settings(st.session_state, feature_settings, forest_settings)


# --------------------------------------------------------------------------------- the panel


def accuracy_panel(
    state: SessionState,
    record: ImageRecord,
    prediction,
    labels: Mapping[int, np.ndarray],
    classes: Sequence[ClassSpec],
    viewport: Viewport | None = None,
    layers: list | None = None,
) -> Callable[[], None] | None:
    """The panel's content (the caller shows it only while its expander is open); the "label
    here next" boxes are appended to ``layers`` (:mod:`seg.ui.marks`) when shown on the canvas.
    ``viewport`` is what ``prediction`` shows (a large frame's predicted part).

    Returns the stale estimate's refresh when "Refresh after every stroke" is on: the caller runs
    it after the canvas is drawn, so the new overlay is not held up by the estimate.
    """
    model = state[keys.MODEL]
    source = Source(record, prediction, labels, classes, model, int(state[keys.MODEL_VERSION]), viewport)
    if model is None or not source.scribbled:
        st.info(
            "Scribble at least two classes to train a model; its accuracy is estimated from your strokes.",
            icon=":material/draw:",
        )
        return None
    cache = state[keys.ACCURACY]
    if cache.get("error"):
        st.error(escape_markdown(cache["error"]))
    refresh = _accuracy_section(cache, source)
    _next_section(state, record, prediction, cache, source, layers)
    _importance_section(cache, source)
    _suggest_section(cache, source)
    return refresh


def _stale(cache: Mapping[str, Any], name: str, source: Source) -> bool:
    return cache.get(f"{name}_version") != source.version


def _accuracy_section(cache: dict, source: Source) -> Callable[[], None] | None:
    """The estimate button, the auto-refresh switch and the results; returns the refresh to run
    after the overlay is shown when the switch is on and the estimate is stale (else None)."""
    st.markdown("**Accuracy**", help=EXPLAIN)
    report = cache.get("report")
    stale = report is not None and _stale(cache, "report", source)
    label = "Refresh estimate" if report is not None else "Estimate accuracy"
    st.button(
        label,
        key="w_estimate_accuracy",
        icon=":material/fact_check:",
        on_click=estimate,
        args=(st.session_state, source),
        type="primary" if stale or report is None else "secondary",
    )
    small = not source.prediction.tiled and math.prod(source.record.shape[1:]) <= AUTO_ESTIMATE_MAX_PIXELS
    auto = st.toggle(
        "Refresh after every stroke",
        value=False,
        key=W_AUTO_ESTIMATE,
        disabled=not small,
        help="The estimate is made again after each stroke, once the new overlay is shown (about "
        "0.3-0.5 s per stroke at 1 MP on 2 cores). Offered for frames up to "
        f"{AUTO_ESTIMATE_MAX_PIXELS / 1e6:g} megapixels.",
    )
    slot = st.empty()
    with slot.container():
        _accuracy_results(cache, source)
    if auto and small and (report is None or stale):
        return functools.partial(_refresh_into, st.session_state, source, slot)
    return None


def _refresh_into(state: SessionState, source: Source, slot) -> None:
    """Make the estimate again and show it in ``slot`` instead of the stale one."""
    estimate(state, source)
    with slot.container():
        _accuracy_results(state[keys.ACCURACY], source)


def _accuracy_results(cache: dict, source: Source) -> None:
    """The estimate's figures and tables, or why there are none (drawn again when refreshed)."""
    report = cache.get("report")
    stale = report is not None and _stale(cache, "report", source)
    if report is None:
        st.caption("Estimated from your strokes on request (it retrains the forest a few times).")
        return
    if stale:
        st.warning(
            "Stale: the scribbles or settings changed since this estimate. Press “Refresh estimate”.",
            icon=":material/update:",
        )
    if report.accuracy is None:
        st.info(escape_markdown(f"Too few strokes to estimate: {report.reason}."), icon=":material/info:")
        return
    low, high = report.interval
    columns = st.columns(3)
    columns[0].metric(
        "Estimated accuracy", f"{report.accuracy:.1%}", help="On the unlabelled pixels of the scribbled frames."
    )
    columns[1].metric("90 % interval", f"{low:.0%} – {high:.0%}")
    columns[2].metric("Strokes", report.n_groups, help="Connected scribbles per class: the units held out.")
    st.caption(
        f"Plain held-out strokes: {report.held_out_accuracy:.1%} of their pixels right "
        "(biased towards the easy middles of structures)."
    )
    table = report.per_class.reset_index()
    st.dataframe(
        table,
        hide_index=True,
        column_config={name: st.column_config.NumberColumn(format="%.3f") for name in ("precision", "recall", "iou")},
    )
    import pandas as pd

    names = list(report.per_class.index)
    confusion = pd.DataFrame(
        report.confusion, index=[f"scribbled {n}" for n in names], columns=[f"predicted {n}" for n in names]
    )
    st.caption("Confusion of the held-out stroke pixels")
    st.dataframe(confusion)


def _next_section(state, record: ImageRecord, prediction, cache: dict, source: Source, layers) -> None:
    st.markdown(
        "**Label here next**",
        help="Held-out strokes the model gets wrong, then the windows where it "
        "is least sure. A stroke there helps most.",
    )
    report = cache.get("report")
    fresh = report if report is not None and not _stale(cache, "report", source) else None
    memo = cache.get("next")
    key = (prediction.key, id(fresh), prediction.whole_probabilities() is not None)
    if memo is None or memo[0] != key:
        memo = cache["next"] = (key, _regions(state, source, fresh))
    regions = memo[1]
    if regions is None:
        st.caption("Zoom in (or segment the whole image) to see where the model is unsure.")
        return
    if not regions:
        st.caption("The model is sure everywhere: nothing to suggest.")
        return
    options = list(range(len(regions)))
    choice = st.radio(
        "Regions",
        options,
        key=W_REGION,
        format_func=lambda i: f"{i + 1}. {regions[i].describe()}",
        label_visibility="collapsed",
    )
    if choice not in options:
        choice = 0
    region = regions[choice]
    with st.container(horizontal=True, vertical_alignment="center"):
        st.button(
            "Go there",
            key="w_go_to_region",
            icon=":material/zoom_in:",
            on_click=go_to,
            args=(record, region.row0, region.col0, region.row1, region.col1),
            help="Zoom the canvas onto the selected box.",
        )
        on_canvas = st.toggle("Boxes on the canvas", value=True, key=W_BOXES_ON_CANVAS)
    boxes = BoxLayer(prediction.frame, tuple((r.row0, r.col0, r.row1, r.col1) for r in regions), choice)
    if on_canvas and layers is not None:
        layers.append(boxes)
    _, height, width = record.shape
    size = _display_size(height, width)
    whole = Viewport(height, width, 0, 0, height, width, *size)
    picture = boxes.draw(display_rgb(state, record, prediction.frame, size), whole)
    st.image(picture, caption="Boxes: where to label next (the selected one in yellow)", width="stretch")


def go_to(record: ImageRecord, top: int, left: int, bottom: int, right: int) -> None:
    """Zoom the canvas onto a box (button callback)."""
    from seg.ui.navigation import show_box

    show_box(st.session_state, record, top, left, bottom, right)


def _regions(state, source: Source, report) -> list | None:
    """Regions worth a stroke on the shown frame, from the uncertainty of at most
    :data:`NEXT_PIXELS` of its pixels: every ``step``-th row and column of a small frame (cheap
    on every stroke); of a large frame, what was predicted (the whole frame once segmented whole,
    else the pixels on screen). None when nothing of a large frame was predicted."""

    from seg.evaluate import label_next
    from seg.model import uncertainty
    from seg.ui import pipeline

    record, model, prediction = source.record, source.model, source.prediction
    frame = prediction.frame
    _, height, width = record.shape
    if prediction.tiled:
        coarse = _coarse_probabilities(prediction, source.viewport)
        if coarse is None:
            return None
        proba, rows, cols = coarse
        return label_next(uncertainty(proba), report, frame=frame, shape=(height, width), grid=(rows, cols))
    (stack,), _ = pipeline.features_for(
        state, record, [frame], model.feature_settings, model.normalization, keep=source.scribbled
    )
    step = max(1, math.ceil(math.sqrt(height * width / NEXT_PIXELS)))
    coarse_map = uncertainty(model.predict_proba_features(stack[::step, ::step]))
    return label_next(coarse_map, report, frame=frame, step=step, shape=(height, width))


def _display_size(height: int, width: int, longest: int = 640) -> tuple[int, int]:
    scale = min(1.0, longest / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _importance_section(cache: dict, source: Source) -> None:
    from seg.evaluate import importance_by_scale

    st.markdown(
        "**What the model looks at**",
        help="Share of the forest's impurity decrease per feature group and "
        "scale; permutation importance: how much held-out accuracy drops when a feature is shuffled.",
    )
    by_scale = importance_by_scale(source.model.feature_importance())
    st.bar_chart(
        by_scale.head(12),
        x="label",
        y="importance",
        horizontal=True,
        sort="-importance",
        x_label="feature group and scale",
        y_label="share of impurity decrease",
        height=320,
    )
    st.button(
        "Permutation importance on held-out strokes",
        key="w_permutation_importance",
        icon=":material/shuffle:",
        on_click=permutation,
        args=(st.session_state, source),
    )
    table = cache.get("permutation")
    if table is not None:
        if _stale(cache, "permutation", source):
            st.caption("Stale: made for an earlier model.")
        summed = importance_by_scale(table)
        st.dataframe(summed[["label", "importance"]], hide_index=True, key="w_permutation_table")


def _suggest_section(cache: dict, source: Source) -> None:
    st.markdown(
        "**Suggest settings**",
        help="Every feature preset, and two other forests, compared by the same "
        "estimate; takes a few seconds per candidate on large images.",
    )
    large = source.prediction.tiled
    st.button(
        "Suggest settings",
        key="w_suggest_settings",
        icon=":material/tune:",
        on_click=suggest,
        args=(st.session_state, source),
        disabled=large,
        help="Each candidate computes the features of the scribbled frames anew: offered for frames "
        f"up to {config.WHOLE_FEATURES_MAX_PIXELS / 1e6:.0f} megapixels (whole feature stacks in memory)."
        if large
        else None,
    )
    ranked = cache.get("suggestions")
    if not ranked:
        return
    if _stale(cache, "suggestions", source):
        st.caption("Stale: made for earlier scribbles.")
    import pandas as pd

    rows = [
        {
            "features": preset_name(s),
            "forest": forest_name(r.forest),
            "accuracy": r.accuracy,
            "interval": "" if r.interval is None else f"{r.interval[0]:.2f}–{r.interval[1]:.2f}",
        }
        for s, r in ranked
    ]
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        key="w_suggestions",
        column_config={"accuracy": st.column_config.NumberColumn(format="%.3f")},
    )
    from seg.evaluate import MIN_GAIN, worth_switching

    model = source.model
    change = worth_switching(ranked, model.feature_settings, model.forest_settings)
    if change is None:
        st.caption(f"Keep the current settings: no candidate is estimated {MIN_GAIN:.0%} or more better.")
        return
    best_settings, best = change
    st.button(
        f"Use {preset_name(best_settings)} ({forest_name(best.forest)})",
        key="w_use_suggestion",
        icon=":material/check:",
        on_click=use_settings,
        args=(best_settings, best.forest),
    )
