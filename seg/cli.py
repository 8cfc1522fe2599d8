"""Command line: ``python -m seg apply`` and ``python -m seg train``.

Every problem with what the user gave (a missing or refused model, no images, an unwritable
output folder, bad annotations) ends the command with one line ``error: ...`` on stderr and a
non-zero exit code, never a traceback. Images that fail inside a batch are reported by name and
skipped; the others are still written, and the exit code is 1 at the end.

Exit codes: 0 all done; 1 some images failed or the command could not run; 2 wrong usage
(argparse); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from seg.volumes import command as volume_command

__all__ = ["main", "build_parser", "ProgressBar"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
_LISTED_FAILURES = 5

_APPLY_EPILOG = """\
inputs: image files, folders (their {suffixes} files, not
recursive) and glob patterns (quote them: "data/*.tif"). Multi-page TIFFs are stacks.

outputs (in --out, created if needed; files with the same names are replaced):
  NAME_mask.png             labels 1..K, one per input (stacks: NAME_mask.tif, one page per frame;
                            more than 255 classes: 16-bit .tif)
  NAME_probabilities.tif    with --probabilities: float32, class axis first
  NAME_overlay.png          with --overlays (stacks: NAME_overlay_t000.png ...)
  measurements.csv          per image, frame and class: pixels, area fraction, objects, sizes
  NAME_objects.tif          with --objects CLASS: that class's objects, numbered 1..N per frame
                            (touching ones split by a distance watershed; 16-bit, 32-bit if needed)
  objects.csv               with --objects: per image, frame and object: area, centroid, bbox,
                            perimeter, diameter, eccentricity, solidity, intensities (identical
                            whether frames were tiled or not: objects are found after prediction)
Files are written under a temporary name and renamed, so none is ever half-written.

huge images: frames whose feature stack would need more than --tile-above-mb are predicted in
overlapping tiles of --tile pixels (same result as untiled, memory bounded by the tile). The image
itself must fit in memory, except uncompressed TIFFs, which are memory-mapped.

OME-Zarr (out of core): an input that is an OME-Zarr image (folder, zipped store, URL), or any
--out ending in .zarr, takes the blockwise path: the image is read chunk by chunk (TIFFs through
tifffile's Zarr store), predicted with dask.array.map_overlap and written as an OME-Zarr store
(labels/segmentation with a pyramid, class names and colours; --probabilities adds the
probabilities as the root image) plus NAME_measurements.csv (pixels and areas per class). The
store is written as OUT.part and renamed when complete. --level picks a resolution level.
--out equal to the input store writes labels/segmentation into the image's own store.

Dask: --workers N starts N local worker processes; --scheduler ADDRESS uses an existing
dask.distributed cluster, whose workers read the inputs and write the outputs themselves, so
the input and output folders must be visible to them under the same paths (shared filesystem).
Without either, images run one after the other here, using all cores.

examples:
  python -m seg apply cells.segmodel new/ --out results
  python -m seg apply cells.segmodel "plates/*.tif" extra.png --out results --overlays
  python -m seg apply cells.segmodel new/ --out results --objects nucleus
  python -m seg apply em.segmodel huge.tif --out results --tile 1024 --max-pixels 500000000
  python -m seg apply em.segmodel stacks/ --out results --workers 2
  python -m seg apply em.segmodel huge.ome.zarr --out huge_labels.zarr --workers 2
  python -m seg apply em.segmodel stacks/ --out /shared/results --scheduler tcp://10.0.0.5:8786
"""

_TRAIN_EPILOG = """\
ANNOTATIONS is an annotations file saved by the app ("Download annotations"), or written with
seg.strokes.Annotations(...).to_json(); its image shape must match IMAGE.

examples:
  python -m seg train cells.png cells_annotations.json --out cells.segmodel
  python -m seg train em.tif em_annotations.json --out em.segmodel --preset "fine detail" --trees 50
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's line breaks (examples, file list)."""


class _CliError(Exception):
    """Ends the command with a one-line message (exit 1)."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m seg`` argument parser (sub-commands ``apply`` and ``train``)."""
    from seg.images import IMAGE_SUFFIXES

    parser = argparse.ArgumentParser(
        prog="python -m seg",
        description="Trainable image segmentation without a browser: train a model from an "
        "annotations file, apply a model to many images.",
        formatter_class=_Formatter,
        epilog="run 'python -m seg apply --help' or 'python -m seg train --help' for details",
    )
    commands = parser.add_subparsers(dest="command", metavar="{apply,train}", required=True)

    apply = commands.add_parser(
        "apply",
        help="segment images with a trained model",
        description="Segment images with a trained .segmodel bundle; write masks and measurements.csv into a folder.",
        formatter_class=_Formatter,
        epilog=_APPLY_EPILOG.replace("{suffixes}", "/".join(IMAGE_SUFFIXES)),
    )
    apply.add_argument("model", metavar="MODEL", help="model bundle (.segmodel) saved by the app or 'seg train'")
    apply.add_argument("inputs", metavar="INPUT", nargs="+", help="image files, folders or glob patterns")
    apply.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder")
    apply.add_argument("--probabilities", action="store_true", help="also write NAME_probabilities.tif (float32)")
    apply.add_argument("--overlays", action="store_true", help="also write NAME_overlay.png")
    apply.add_argument(
        "--objects",
        default=None,
        metavar="CLASS",
        help="also find the objects of this class (name or number 1..K): write NAME_objects.tif and objects.csv",
    )
    apply.add_argument(
        "--no-masks", dest="masks", action="store_false", help="do not write mask files (only measurements)"
    )
    apply.add_argument(
        "--tile",
        type=_positive_int,
        default=1024,
        metavar="PX",
        help="tile side for huge frames (default: %(default)s)",
    )
    apply.add_argument(
        "--tiling",
        choices=("auto", "always", "never"),
        default="auto",
        help="tile frames when the feature stack is over --tile-above-mb (auto, the default), always, or never",
    )
    apply.add_argument(
        "--tile-above-mb",
        type=_positive_int,
        default=1024,
        metavar="MB",
        help="feature-stack size above which frames are tiled (default: %(default)s)",
    )
    apply.add_argument(
        "--max-pixels",
        type=_positive_int,
        default=100_000_000,
        metavar="N",
        help="refuse images with more pixels (frames x height x width) than this (default: %(default)s)",
    )
    apply.add_argument(
        "--level",
        type=int,
        default=0,
        metavar="N",
        help="OME-Zarr/TIFF resolution level to segment (default: %(default)s, full resolution)",
    )
    where = apply.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help="run on a local Dask cluster of N worker processes",
    )
    where.add_argument(
        "--scheduler", default=None, metavar="ADDRESS", help="run on an existing Dask cluster, e.g. tcp://10.0.0.5:8786"
    )
    apply.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    volume_command.add_apply_arguments(apply)
    apply.set_defaults(handler=_run_apply)

    train = commands.add_parser(
        "train",
        help="train a model from an image and an annotations file",
        description="Train a model bundle from an image and its scribble annotations (JSON).",
        formatter_class=_Formatter,
        epilog=_TRAIN_EPILOG,
    )
    train.add_argument("image", metavar="IMAGE", help="the annotated image (or stack)")
    train.add_argument("annotations", metavar="ANNOTATIONS", help="annotations file (.json)")
    train.add_argument("--out", "-o", required=True, metavar="MODEL", help="model bundle to write (.segmodel)")
    train.add_argument(
        "--preset",
        default=None,
        metavar="NAME",
        help="feature preset: 'fine detail', 'balanced', 'large structures', "
        "'scikit-image gallery' (default: the library's default preset)",
    )
    train.add_argument(
        "--trees",
        type=_positive_int,
        default=None,
        metavar="N",
        help="number of trees (default: the library's default)",
    )
    train.add_argument(
        "--depth",
        type=_positive_int,
        default=None,
        metavar="N",
        help="maximum tree depth (default: the library's default)",
    )
    train.add_argument("--seed", type=int, default=0, help="random seed of the forest (default: %(default)s)")
    train.add_argument(
        "--max-pixels",
        type=_positive_int,
        default=100_000_000,
        metavar="N",
        help="refuse images with more pixels than this (default: %(default)s)",
    )
    volume_command.add_train_arguments(train)
    train.set_defaults(handler=_run_train)
    return parser


# --------------------------------------------------------------------------- progress


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class ProgressBar:
    """A plain text progress bar on a stream: ``[#####-----] 5/10 images, 00:12 left``.

    On a terminal it redraws one line; otherwise (a log file) it prints a line per update.
    """

    def __init__(self, total: int, stream: TextIO | None = None, *, width: int = 30) -> None:
        self.total = max(total, 1)
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.start = time.perf_counter()
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.update(0)

    def update(self, done: int, note: str = "") -> None:
        filled = int(self.width * done / self.total)
        elapsed = time.perf_counter() - self.start
        left = f", {_clock(elapsed / done * (self.total - done))} left" if 0 < done < self.total else ""
        line = f"[{'#' * filled}{'-' * (self.width - filled)}] {done}/{self.total} images{left}"
        if note:
            line += f"  {note}"
        if self.interactive:
            self.stream.write("\r" + line[:200].ljust(79))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()


# --------------------------------------------------------------------------- commands


def _load_model(path: str):
    from seg.persist import load_model

    if not os.path.exists(path):
        raise _CliError(f"model file {path!r} does not exist: give the path of a .segmodel bundle")
    if os.path.isdir(path):
        raise _CliError(f"model {path!r} is a folder: give the path of a .segmodel bundle")
    try:
        return load_model(path)
    except OSError as exc:
        raise _CliError(f"cannot read the model file {path!r}: {exc.strerror or exc}") from None


def _run_apply(args: argparse.Namespace) -> int:
    from seg import batch

    model = _load_model(args.model)
    if model.dims == 3:  # volumes: 3-D blocks, here or on Dask (seg.volumes.command)
        if args.objects is not None:
            raise _CliError(
                "--objects is for 2-D models: a volume model writes volume_objects.csv "
                "(the 26-connected objects of every class) without it"
            )
        return volume_command.run_apply(
            args, model, batch.collect_inputs(args.inputs), batch.check_output_dir(args.out), ProgressBar
        )
    objects = _object_class(model, args.objects)
    if _wants_zarr(args):
        if objects is not None:
            raise _CliError(
                "--objects works on images read whole (PNG, TIFF, ...), not on the OME-Zarr "
                "blockwise path: write the labels to .zarr without --objects, or apply to a TIFF"
            )
        return _run_apply_zarr(args, model)
    paths = batch.collect_inputs(args.inputs)
    out = batch.check_output_dir(args.out)
    options = batch.ApplyOptions(
        masks=args.masks,
        probabilities=args.probabilities,
        overlays=args.overlays,
        tile=args.tile,
        tiling=args.tiling,
        tile_above_bytes=args.tile_above_mb << 20,
        max_pixels=args.max_pixels,
        objects=objects,
    )
    bar: ProgressBar | None = None

    def progress(done: int, total: int, outcome: batch.ImageOutcome) -> None:
        if bar is not None:
            bar.update(done, f"{outcome.source}: failed" if not outcome.ok else "")

    with batch.dask_client(args.scheduler, args.workers) as client:
        bar = None if args.quiet else ProgressBar(len(paths))
        try:
            report = batch.run_batch(model, paths, out, options, client=client, progress=progress)
        finally:
            if bar is not None:
                bar.close()
    if len(report.failed) > _LISTED_FAILURES:  # the summary names only the first few
        for outcome in report.failed:
            print(f"skipped {outcome.source}: {outcome.error}", file=sys.stderr)
    print(report.summary(max_listed=_LISTED_FAILURES), file=sys.stderr if report.failed else sys.stdout)
    return EXIT_OK if not report.failed else EXIT_FAILED


def _object_class(model, text: str | None) -> int | None:
    """The class number 1..K named by ``--objects`` (a class name, any case, or a number)."""
    if text is None:
        return None
    names = list(model.class_names)
    by_name = {name.strip().lower(): index for index, name in enumerate(names, start=1)}
    key = text.strip().lower()
    if key in by_name:
        return by_name[key]
    if key.isdigit() and 1 <= int(key) <= len(names):
        return int(key)
    choices = ", ".join(f"{index} = {name!r}" for index, name in enumerate(names, start=1))
    raise _CliError(f"--objects {text!r} is not a class of the model: give a class name or number ({choices})")


def _wants_zarr(args: argparse.Namespace) -> bool:
    from seg.io import is_zarr_location

    return args.out.lower().rstrip("/\\").endswith(".zarr") or any(is_zarr_location(item) for item in args.inputs)


def _run_apply_zarr(args: argparse.Namespace, model) -> int:
    """The OME-Zarr path (see the epilog): one store per input, measurements CSV beside."""
    from seg import batch
    from seg.batch import to_zarr

    targets = to_zarr.store_targets(args.inputs, args.out)
    batch.check_output_dir(targets[0].parent)
    outcomes = []
    with batch.dask_client(args.scheduler, args.workers) as client:
        for source, target in zip(args.inputs, targets):
            outcome = to_zarr.apply_to_store(
                model,
                source,
                target,
                level=args.level,
                tile=args.tile,
                probabilities=args.probabilities,
                max_pixels=args.max_pixels,
                scheduler=client,
                progress=not args.quiet,
            )
            outcomes.append(outcome)
            print(
                f"{outcome.source}: {' x '.join(map(str, outcome.shape))} ({outcome.axes}) -> "
                f"{outcome.out} ({outcome.levels} levels) in {outcome.seconds:.1f} s"
            )
            for row in to_zarr.store_measurement_rows(outcome):
                print(
                    f"  frame {row['frame']} {row['class']}: {row['pixels']:,} px, {row['area']:.6g} {row['area_unit']}"
                )
    csv_path = to_zarr.measurements_path(targets, args.out)
    batch.atomic_write(csv_path, to_zarr.measurements_csv_text(outcomes).encode("utf-8"))
    print(f"measurements: {csv_path}")
    return EXIT_OK


def _feature_settings(preset: str | None):
    from seg.features import PRESETS

    if preset is None:
        return None
    names = {name.lower(): name for name in PRESETS}
    key = names.get(preset.strip().lower())
    if key is None:
        raise _CliError(f"unknown preset {preset!r}: choose one of {', '.join(map(repr, PRESETS))}")
    return PRESETS[key]


def _forest_settings(trees: int | None, depth: int | None, seed: int, dims: int = 2):
    import dataclasses

    from seg.forest import ForestSettings

    changes: dict[str, Any] = {"random_state": seed}
    if trees is not None:
        changes["n_estimators"] = trees
    if depth is not None:
        changes["max_depth"] = depth
    if dims == 3:
        from seg.volumes.model import DEFAULT_VOLUME_FOREST

        return dataclasses.replace(DEFAULT_VOLUME_FOREST, **changes)
    return dataclasses.replace(ForestSettings(), **changes)


def _run_train(args: argparse.Namespace) -> int:
    from seg import persist
    from seg.batch import check_output_dir
    from seg.files import printable, read_limited
    from seg.images import read_image
    from seg.model import train
    from seg.strokes import Annotations
    from seg.strokes.checks import MAX_JSON_BYTES

    settings = _feature_settings(args.preset)
    forest = _forest_settings(args.trees, args.depth, args.seed, args.dims)
    if args.dims == 3:  # a volume model (seg.volumes.command reads the volume and its labels)
        volume, labels, names, colors = volume_command.read_training_volume(args)
        check_output_dir(Path(args.out).parent if str(Path(args.out).parent) else ".")
        start = time.perf_counter()
        model = train(
            volume,
            labels,
            settings,
            names,
            class_colors=colors,
            forest=forest,
            dims=3,
            volume_features=args.volume_features,
        )
        persist.save_model(model, args.out)
        print(
            f"trained a volume model of {len(model.class_names)} classes on {int((labels > 0).sum()):,} "
            f"labelled voxels in {time.perf_counter() - start:.1f} s; saved {args.out}"
        )
        return EXIT_OK
    try:
        annotations = Annotations.from_json(read_limited(args.annotations, MAX_JSON_BYTES))
    except OSError as exc:  # also a FIFO or device (never read) and a file above MAX_JSON_BYTES
        raise _CliError(f"cannot read the annotations file {args.annotations!r}: {exc.strerror or exc}") from None
    if not os.path.isfile(args.image):
        raise _CliError(f"image {args.image!r} does not exist: give the annotated image")
    try:
        image = read_image(args.image, max_pixels=args.max_pixels)
    except OSError as exc:
        raise _CliError(f"cannot read the image {args.image!r}: {exc.strerror or exc}") from None
    if tuple(image.shape[:3]) != tuple(annotations.image_shape):
        raise _CliError(
            f"the annotations were drawn on an image of shape (T, H, W) = "
            f"{tuple(annotations.image_shape)} but {args.image!r} is {tuple(image.shape[:3])}: "
            "give the image the annotations belong to"
        )
    out = Path(args.out)
    check_output_dir(out.parent if str(out.parent) else ".")
    start = time.perf_counter()
    model = train(
        image,
        annotations.label_stack(),
        settings,
        annotations.class_names,
        class_colors=annotations.class_colors,
        forest=forest,
    )
    persist.save_model(model, out)
    print(
        f"trained a model of {len(model.class_names)} classes ({', '.join(map(printable, model.class_names))}) "
        f"on {int((annotations.label_stack() > 0).sum()):,} labelled pixels in "
        f"{time.perf_counter() - start:.1f} s; saved {out}"
    )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module notes)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from seg.errors import SegError
    from seg.runtime import stop_hugepage_advice

    stop_hugepage_advice()  # 1.5x faster on large images (seg.runtime)

    try:
        return args.handler(args)
    except (SegError, _CliError) as exc:
        message = " ".join(str(exc).split())
        print(f"error: {message}", file=sys.stderr)
        return EXIT_FAILED
    except MemoryError:
        print("error: out of memory: use --tiling always with a smaller --tile, or fewer --workers", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
