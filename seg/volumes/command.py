"""The volume options and steps of ``python -m seg apply`` and ``python -m seg train``.

``apply`` with a volume model (one trained with ``dims=3``) reads every input as a volume and
predicts it in 3-D blocks (their margin from the model's features), here or on the Dask cluster
of ``--workers`` / ``--scheduler``; see :mod:`seg.volumes.apply` for the files written.

``train --dims 3`` trains a volume model. Annotations for a volume are either the app's
annotations file (strokes per z slice: a stroke's ``frame`` is its slice, the image shape is
(Z, Y, X)) or a label volume: a TIFF stack (or NIfTI) of the volume's shape, 0 = unlabelled,
1..K = class, with the names from ``--class-names``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from seg.errors import AnnotationError, SettingsError

__all__ = ["add_apply_arguments", "add_train_arguments", "run_apply", "read_training_volume"]

_LABEL_SUFFIXES = (".tif", ".tiff", ".nii", ".gz")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"voxel size {text} must be a positive number")
    return value


def _add_common(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    group = parser.add_argument_group("volumes (3-D)")
    group.add_argument(
        "--stack",
        choices=("auto", "volume", "time"),
        default="auto",
        help="what a multi-page stack is: 'auto' (its metadata says; a stack without "
        "metadata is a volume for a volume model), 'volume' (z slices) or 'time' "
        "(frames, 2-D model only)",
    )
    group.add_argument(
        "--spacing",
        type=_positive_float,
        nargs=3,
        metavar=("DZ", "DY", "DX"),
        default=None,
        help="voxel size overriding the files' (with --unit)",
    )
    group.add_argument(
        "--unit", choices=("nm", "µm", "um", "mm", "m"), default=None, help="unit of --spacing (um = µm)"
    )
    return group


def add_apply_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``apply`` for volume models."""
    group = _add_common(parser)
    group.add_argument(
        "--block-mb",
        type=int,
        default=512,
        metavar="MB",
        help="working memory per 3-D block (default: %(default)s); the result does not depend on it",
    )


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``train`` for volume models."""
    group = _add_common(parser)
    group.add_argument(
        "--dims", type=int, choices=(2, 3), default=2, help="2: an image model (default); 3: a volume model"
    )
    group.add_argument(
        "--volume-features",
        choices=("per_slice", "3d"),
        default=None,
        help="volume model features: 2-D per slice or volumetric (3d); default: 3d for near-isotropic "
        "voxels (largest side <= 2x the smallest), else per_slice, as measured in bench/README.md",
    )
    group.add_argument(
        "--class-names",
        default=None,
        metavar="A,B,...",
        help="class names of a label-volume ANNOTATIONS file (comma-separated)",
    )


def _unit(args: argparse.Namespace) -> str | None:
    return "µm" if args.unit == "um" else args.unit


def _options_check(args: argparse.Namespace, model_dims: int) -> None:
    if model_dims == 3 and args.stack == "time":
        raise SettingsError(
            "--stack time reads stacks as frames, but this is a volume model: use "
            "--stack volume or auto, or a 2-D model"
        )
    if (args.spacing is not None or args.unit is not None) and model_dims == 2:
        raise SettingsError("--spacing/--unit are for volume models; this is a 2-D model")


def run_apply(args: argparse.Namespace, model, paths: list[Path], out: Path, progress_bar) -> int:
    """``apply`` with a volume model: returns the exit code (0 all done, 1 some failed)."""
    import numpy as np

    from seg import batch
    from seg.volumes.apply import VolumeOptions, run_volumes

    _options_check(args, 3)
    options = VolumeOptions(
        masks=args.masks,
        probabilities=args.probabilities,
        stack="volume" if args.stack == "volume" else "auto",
        spacing=None if args.spacing is None else tuple(args.spacing),
        unit=_unit(args),
        block_bytes=max(1, args.block_mb) << 20,
        max_voxels=args.max_pixels,
    )
    start = time.perf_counter()
    with batch.dask_client(args.scheduler, args.workers) as client:
        bar = None if args.quiet else progress_bar(len(paths))

        def progress(done: int, total: int, outcome) -> None:
            if bar is not None:
                bar.update(done, f"{outcome.source}: failed" if not outcome.ok else "")

        try:
            outcomes = run_volumes(model, paths, out, options, client=client, progress=progress)
        finally:
            if bar is not None:
                bar.close()
    failed = [o for o in outcomes if not o.ok]
    for outcome in failed:
        print(f"skipped {outcome.source}: {outcome.error}", file=sys.stderr)
    done = len(outcomes) - len(failed)
    voxels = sum(int(np.prod(o.shape)) for o in outcomes if o.ok)
    print(
        f"segmented {done} of {len(outcomes)} volume(s) ({voxels / 1e6:.1f} megavoxels) in "
        f"{time.perf_counter() - start:.1f} s into {out}",
        file=sys.stderr if failed else sys.stdout,
    )
    return 1 if failed else 0


def read_training_volume(args: argparse.Namespace):
    """``train --dims 3``: the volume, its labels (Z, Y, X), class names and colours."""
    from seg.images.volume import read_volume
    from seg.strokes import Annotations

    _options_check(args, 3)
    volume = read_volume(
        args.image,
        stack="volume" if args.stack == "volume" else "auto",
        spacing=args.spacing,
        unit=_unit(args),
        max_voxels=args.max_pixels,
    )
    source = Path(args.annotations)
    if source.suffix.lower() in _LABEL_SUFFIXES:
        labels = read_volume(source, stack="volume").data
        if labels.shape[3] != 1 or labels.dtype.kind not in "ui":
            raise AnnotationError(
                f"label volume {source.name!r} must be one channel of whole numbers "
                f"(0 = unlabelled), got {labels.shape[3]} channel(s) of {labels.dtype}"
            )
        names = None if args.class_names is None else [n.strip() for n in args.class_names.split(",")]
        return volume, labels[..., 0], names, None
    try:
        annotations = Annotations.from_json(source.read_bytes())
    except OSError as exc:
        raise AnnotationError(f"cannot read the annotations file {str(source)!r}: {exc.strerror or exc}") from None
    if tuple(annotations.image_shape) != volume.shape:
        raise AnnotationError(
            f"the annotations were drawn on slices of shape (Z, Y, X) = {tuple(annotations.image_shape)} but "
            f"{Path(args.image).name!r} is {volume.shape}: give the volume the annotations belong to"
        )
    return volume, annotations.label_stack(), list(annotations.class_names), list(annotations.class_colors)
