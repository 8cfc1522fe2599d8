"""seg.files: the one atomic writer (used by batch outputs and model bundles) and safe names."""

from __future__ import annotations

import os

import numpy as np
import pytest

import seg.files
from seg.files import atomic_write


def test_atomic_write_replaces_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "x.bin"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(os.listdir(tmp_path)) == ["x.bin"]


def test_atomic_write_failure_keeps_the_old_file_whole(tmp_path):
    target = tmp_path / "x.bin"
    atomic_write(target, b"old")
    with pytest.raises(TypeError):
        atomic_write(target, object())  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["x.bin"]


def test_atomic_write_flushes_to_disk_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(seg.files.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(seg.files.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    atomic_write(tmp_path / "x.bin", b"data")
    assert events == ["fsync", "replace"]


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "x.bin", b"data")
    finally:
        os.umask(old)
    assert (tmp_path / "x.bin").stat().st_mode & 0o777 == 0o644


def test_batch_outputs_and_model_files_share_the_writer(tmp_path, monkeypatch):
    """Both writers of the package go through seg.files.atomic_write (so both fsync)."""
    from seg import batch, persist
    from seg.model import train

    rng = np.random.default_rng(0)
    image = rng.random((24, 24)).astype(np.float32)
    labels = np.zeros((24, 24), np.uint8)
    labels[:4], labels[-4:] = 1, 2
    model = train(image, labels)
    written = []
    real = seg.files.atomic_write

    def spy(path, data):
        written.append(os.path.basename(path))
        real(path, data)

    monkeypatch.setattr("seg.persist.writing.atomic_write", spy)
    monkeypatch.setattr("seg.batch.apply.atomic_write", spy)
    monkeypatch.setattr("seg.batch.run.atomic_write", spy)
    persist.save_model(model, tmp_path / "m.segmodel")
    from PIL import Image

    Image.fromarray((image * 255).astype(np.uint8)).save(tmp_path / "in.png")
    batch.run_batch(model, [tmp_path / "in.png"], tmp_path / "out")
    assert written == ["m.segmodel", "in_mask.png", "measurements.csv"]
