"""Batch apply: segment many uploaded images with a model, spot-check, download masks + CSV.

The page only moves values between widgets, session state and ``seg.batch``; all image work is
in the engine. Results of the last run live in ``st.session_state`` under ``batch.*`` keys, so
they survive reruns (e.g. clicking a download button):

``batch.outcomes``   list of seg.batch.ImageOutcome (in upload order)
``batch.thumbnails`` list of (caption, (h, w, 3) uint8 overlay) for the gallery
``batch.stacks``     {stem: measurement rows} of inputs with more than one frame
``batch.zip``        bytes of the zip (masks + measurements.csv)
``batch.csv``        text of measurements.csv
``batch.objects_csv`` text of objects.csv, or None when no objects were asked for
``batch.summary``    one-line summary of the run
``batch.zarr``       {file name: bytes} of the masks as zipped OME-Zarr stores (zip uploads, or
                     "Include masks as OME-Zarr")
The model trained on the main page is read from ``seg.model`` (see the contract).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time

import streamlit as st

from seg import batch
from seg.batch import to_zarr
from seg.errors import SegError
from seg.images import IMAGE_SUFFIXES
from seg.ui.lifetime import run_finished, watch_session
from seg.ui.objects import batch_objects_choice
from seg.ui.state import MODEL as MODEL_KEY  # the main page's model (the contract)

IMAGE_TYPES = [suffix.lstrip(".") for suffix in IMAGE_SUFFIXES] + ["zip"]  # zip: OME-Zarr store
GALLERY_SIZE = 24
THUMBNAIL_SIDE = 160
SESSION_MODEL = "Model trained in this session"
UPLOADED_MODEL = "Upload a model bundle (.segmodel)"


@st.cache_resource(scope="session", max_entries=2, show_spinner=False)
def _bundle_model(digest: str, _data: bytes):
    """The model of an uploaded bundle, loaded safely once per distinct file (keyed by digest).

    Per session: released when the tab disconnects, never shared with another user.
    """
    from seg.persist import load_model

    return load_model(_data)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60:d}:{seconds % 60:02d}"


def choose_model():
    """The model to apply (from this session or an uploaded bundle), or None with a hint shown."""
    session_model = st.session_state.get(MODEL_KEY)
    choices = [SESSION_MODEL, UPLOADED_MODEL] if session_model is not None else [UPLOADED_MODEL]
    choice = st.radio("Model", choices, key="w_batch_model_choice", horizontal=True)
    if choice == SESSION_MODEL:
        st.caption("Classes: " + ", ".join(session_model.class_names))
        return session_model
    upload = st.file_uploader("Model bundle", type=["segmodel"], key="w_batch_model_upload")
    if upload is None:
        st.info("Upload a model bundle saved on the main page, or train one there first.")
        return None
    data = upload.getvalue()
    try:
        model = _bundle_model(hashlib.sha256(data).hexdigest(), data)
    except SegError as exc:
        st.error("This model file cannot be used.")
        st.text(str(exc))
        return None
    st.caption("Classes: " + ", ".join(model.class_names))
    return model


def choose_options() -> batch.ApplyOptions:
    left, right = st.columns(2)
    probabilities = left.checkbox("Include probabilities (float32 TIFF)", key="w_batch_proba")
    overlays = right.checkbox("Include overlays (PNG)", key="w_batch_overlays")
    return batch.ApplyOptions(probabilities=probabilities, overlays=overlays)


def _apply_upload(model, upload, name: str, options: batch.ApplyOptions, zarr_masks: bool):
    """One upload's result: a zipped OME-Zarr store is read out of core, the rest in memory."""
    if upload.name.lower().endswith(".zip"):
        return to_zarr.apply_zipped_store(
            model, upload.getvalue(), name, source_name=upload.name, max_pixels=options.max_pixels
        )
    result = batch.apply_source(model, upload.getvalue(), name, options, source_name=upload.name)
    if zarr_masks and result.labels is not None:
        result.outputs[f"{name}_mask.ome.zarr.zip"] = to_zarr.mask_store_zip(model, result.labels)
    return result


def run(model, uploads, options: batch.ApplyOptions, zarr_masks: bool = False) -> None:
    """Segment every upload with a progress bar; store the results in session state."""
    names = batch.unique_stems(upload.name for upload in uploads)
    bar = st.progress(0.0, text=f"0 / {len(uploads)} images done")
    start = time.perf_counter()
    results = []
    thumbnails = []
    for index, (upload, name) in enumerate(zip(uploads, names)):
        try:
            result = _apply_upload(model, upload, name, options, zarr_masks)
        except Exception as exc:  # noqa: BLE001 - one broken image must not end the batch
            outcome = batch.ImageOutcome(
                name, batch.display_name(upload.name), f"could not be processed ({type(exc).__name__})"
            )
            result = batch.ImageResult(outcome)
        if result.labels is not None and len(thumbnails) < GALLERY_SIZE:
            thumbnails.append(
                (name, batch.overlay_thumbnail(model, result.image[0], result.labels[0], max_side=THUMBNAIL_SIDE))
            )
        # Only the encoded files are kept: full-size arrays of a big batch would fill the memory.
        results.append(batch.ImageResult(result.outcome, outputs=result.outputs))
        done = index + 1
        elapsed = time.perf_counter() - start
        left = elapsed / done * (len(uploads) - done)
        text = f"{done} / {len(uploads)} images done"
        if done < len(uploads):
            text += f", about {_clock(left)} left"
        bar.progress(done / len(uploads), text=text)
    outcomes = [r.outcome for r in results]
    csv_text = batch.measurements_csv(outcomes)
    report = batch.BatchReport(outcomes, time.perf_counter() - start)
    st.session_state["batch.outcomes"] = outcomes
    st.session_state["batch.csv"] = csv_text
    objects_text = batch.objects_csv(model, outcomes, options) if options.objects is not None else None
    st.session_state["batch.objects_csv"] = objects_text
    st.session_state["batch.zip"] = batch.results_zip(results, csv_text=csv_text, objects_text=objects_text)
    st.session_state["batch.summary"] = report.summary(max_listed=0)  # failures listed apart
    st.session_state["batch.zarr"] = {
        file: data for r in results for file, data in r.outputs.items() if file.endswith(".ome.zarr.zip")
    }
    st.session_state["batch.thumbnails"] = thumbnails
    st.session_state["batch.stacks"] = {o.name: o.rows for o in outcomes if o.ok and o.shape and o.shape[0] > 1}


def show_results() -> None:
    outcomes = st.session_state.get("batch.outcomes")
    if outcomes is None:
        return
    failed = [o for o in outcomes if not o.ok]
    st.subheader("Results")
    if failed:
        st.warning(f"{len(failed)} of {len(outcomes)} files could not be segmented and were skipped:")
        # Plain text: file names come from the user and must not be rendered as markdown.
        st.text("\n".join(f"{o.source}: {o.error}" for o in failed))
    st.text(st.session_state["batch.summary"])
    if len(failed) < len(outcomes):
        left, right = st.columns(2)
        left.download_button(
            "Download masks and measurements (zip)",
            st.session_state["batch.zip"],
            file_name="segmentation_results.zip",
            mime="application/zip",
            key="w_batch_zip",
        )
        right.download_button(
            "Download measurements (CSV)",
            st.session_state["batch.csv"],
            file_name="measurements.csv",
            mime="text/csv",
            key="w_batch_csv",
        )
        if st.session_state.get("batch.objects_csv") is not None:
            left.download_button(
                "Download objects (CSV)",
                st.session_state["batch.objects_csv"],
                file_name="objects.csv",
                mime="text/csv",
                key="w_batch_objects_csv",
            )
    for index, (file_name, data) in enumerate(st.session_state.get("batch.zarr", {}).items()):
        st.download_button(
            f"Download {file_name} (OME-Zarr, opens in napari / any OME-Zarr viewer)",
            data,
            file_name=file_name,
            mime="application/zip",
            key=f"w_batch_zarr_{index}",
        )
    thumbnails = st.session_state.get("batch.thumbnails", [])
    if thumbnails:
        st.markdown("**Spot check** (first frame of each image)")
        st.image([image for _, image in thumbnails], caption=[name for name, _ in thumbnails])
    show_measurements(outcomes)


def show_measurements(outcomes) -> None:
    import pandas as pd

    rows = [row for o in outcomes if o.ok for row in o.rows]
    if not rows:
        return
    st.markdown("**Measurements**")
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    stacks = st.session_state.get("batch.stacks", {})
    if stacks:
        name = st.selectbox("Stack", sorted(stacks), key="w_batch_stack")
        frame = pd.DataFrame(stacks[name])
        chart = frame.pivot_table(index="frame", columns="class", values="area_fraction")
        st.markdown("Area fraction per class over frames")
        st.line_chart(chart)


watch_session()
st.title("Apply a model to many images")
st.caption(
    "Segment a batch of images or stacks with a trained model, check a few, and download "
    "the masks with a table of measurements."
)
model = choose_model()
uploads = st.file_uploader(
    "Images or stacks (or zipped OME-Zarr images, .zip)",
    type=IMAGE_TYPES,
    accept_multiple_files=True,
    key="w_batch_images",
)
options = dataclasses.replace(choose_options(), objects=batch_objects_choice(model))
zarr_masks = st.checkbox("Include masks as OME-Zarr (zip, with a pyramid: for large images)", key="w_batch_zarr_masks")
ready = model is not None and bool(uploads)
label = f"Segment {len(uploads)} image{'s' if len(uploads or []) != 1 else ''}" if uploads else "Segment"
if st.button(label, type="primary", disabled=not ready, key="w_batch_run"):
    run(model, uploads, options, zarr_masks)
show_results()
run_finished()
