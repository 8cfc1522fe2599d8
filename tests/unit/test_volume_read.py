"""Reading volumes: TIFF axes and voxel size, NIfTI with its affine, header-first refusals."""

from __future__ import annotations

import gzip
import io
import tracemalloc

import nibabel
import numpy as np
import pytest
import tifffile

import seg
from seg.errors import ImageError, ImageTooLargeError, VolumeHeaderError, VoxelSizeError
from seg.images.volume import (
    as_volume,
    read_volume,
    stack_kind,
    volume_nifti_bytes,
    volume_tiff_bytes,
)

RNG = np.random.default_rng(11)
STACK = (RNG.random((6, 20, 24)) * 250).astype(np.uint8)


def _tiff(array: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **kwargs)
    return buffer.getvalue()


def _nifti(array_xyz: np.ndarray, affine: np.ndarray, *, compress: bool = False, **header) -> bytes:
    image = nibabel.Nifti1Image(array_xyz, affine)
    for key, value in header.items():
        image.header[key] = value
    data = image.to_bytes()
    return gzip.compress(data) if compress else data


# ------------------------------------------------------------------------------------ TIFF


def test_imagej_stack_keeps_z_axis_and_anisotropic_voxel_size():
    volume = seg.read_volume(volume_tiff_bytes(STACK, (0.05, 0.004, 0.004), "µm"))
    assert volume.shape == (6, 20, 24)
    np.testing.assert_array_equal(volume.data[..., 0], STACK)
    np.testing.assert_allclose(volume.spacing, (0.05, 0.004, 0.004), rtol=1e-6)
    assert volume.unit == "µm"
    assert volume.affine is None


def test_imagej_channels_stay_channels():
    rgbish = np.stack([STACK, 255 - STACK], axis=-1)  # (Z, Y, X, 2)
    volume = read_volume(volume_tiff_bytes(rgbish, (2.0, 1.0, 1.0), "nm"))
    assert volume.data.shape == (6, 20, 24, 2)
    np.testing.assert_array_equal(volume.data, rgbish)
    assert volume.unit == "nm"


def test_ome_voxel_size_in_mixed_units_is_converted_to_the_x_unit():
    data = _tiff(
        STACK,
        ome=True,
        metadata={
            "axes": "ZYX",
            "PhysicalSizeX": 4.0,
            "PhysicalSizeXUnit": "nm",
            "PhysicalSizeY": 4.0,
            "PhysicalSizeYUnit": "nm",
            "PhysicalSizeZ": 0.05,
            "PhysicalSizeZUnit": "µm",
        },
    )
    volume = read_volume(data)
    assert volume.unit == "nm"
    np.testing.assert_allclose(volume.spacing, (50.0, 4.0, 4.0))
    assert stack_kind(data) == "volume"


def test_stack_without_metadata_is_unknown_and_reads_as_a_volume_in_voxel_units():
    data = _tiff(STACK)
    assert stack_kind(data) == "unknown"
    volume = read_volume(data)
    assert volume.shape == STACK.shape
    assert volume.spacing == (1.0, 1.0, 1.0) and volume.unit is None


def test_time_series_is_refused_unless_the_caller_says_volume():
    data = _tiff(STACK, imagej=True, metadata={"axes": "TYX"})
    assert stack_kind(data) == "time"
    with pytest.raises(ImageError, match="time points"):
        read_volume(data)
    assert read_volume(data, stack="volume").shape == STACK.shape


def test_time_series_of_volumes_and_single_images_are_refused():
    both = _tiff(np.stack([STACK, STACK]), imagej=True, metadata={"axes": "TZYX"})
    assert stack_kind(both) == "both"
    with pytest.raises(ImageError, match="one time point per file"):
        read_volume(both)
    with pytest.raises(ImageError, match="single 2-D image"):
        read_volume(_tiff(STACK[0]))
    with pytest.raises(ImageError, match="neither a TIFF stack nor a NIfTI"):
        read_volume(b"\x89PNG\r\n\x1a\n" + b"\0" * 600)


@pytest.mark.parametrize("spacing", [(0, 1, 1), (1, -2, 1), (1, 1, float("nan")), (1, 1), "1,1,1"])
def test_zero_negative_or_malformed_voxel_size_is_refused(spacing):
    with pytest.raises(VoxelSizeError, match="three positive numbers"):
        read_volume(_tiff(STACK), spacing=spacing)
    with pytest.raises(VoxelSizeError):
        as_volume(STACK, spacing=spacing)


def test_imagej_zero_z_spacing_in_the_file_is_refused():
    data = _tiff(STACK, imagej=True, resolution=(10, 10), metadata={"axes": "ZYX", "spacing": 0.0})
    with pytest.raises(VoxelSizeError, match="ImageJ metadata"):
        read_volume(data)


def test_volume_limits_are_checked_before_decoding():
    with pytest.raises(ImageTooLargeError) as info:
        read_volume(_tiff(STACK), max_voxels=1000)
    assert info.value.limit == "max_pixels"


# ------------------------------------------------------------------------------------ NIfTI


AFFINE = np.array([[-0.9, 0.1, 0.0, 90.0], [0.0, 1.1, 0.2, -126.0], [0.05, 0.0, 2.5, -72.0], [0, 0, 0, 1]])


@pytest.mark.parametrize("compress", [False, True])
def test_nifti_axes_are_reordered_to_zyx_and_the_affine_is_kept(compress):
    xyz = (RNG.random((24, 20, 6)) * 1000).astype(np.int16)
    volume = read_volume(_nifti(xyz, AFFINE, compress=compress))
    assert volume.shape == (6, 20, 24)
    # voxel (i, j, k) = (x, y, z) of the file is data[z, y, x]
    assert volume.data[4, 7, 3, 0] == xyz[3, 7, 4]
    np.testing.assert_allclose(volume.affine, AFFINE, atol=1e-6)
    zooms = nibabel.Nifti1Image(xyz, AFFINE).header.get_zooms()
    np.testing.assert_allclose(volume.spacing, zooms[::-1], rtol=1e-6)


@pytest.mark.parametrize("compress", [False, True])
def test_nifti_mask_round_trip_keeps_affine_and_geometry(compress, tmp_path):
    xyz = (RNG.random((24, 20, 6)) * 200).astype(np.uint8)
    source = _nifti(xyz, AFFINE, compress=True)
    volume = read_volume(source)
    mask = (volume.data[..., 0] > 100).astype(np.uint8) + 1
    out = tmp_path / ("mask.nii.gz" if compress else "mask.nii")
    out.write_bytes(volume_nifti_bytes(mask, volume, compress=compress))
    written = nibabel.load(out)
    np.testing.assert_allclose(written.affine, AFFINE, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(written.dataobj), mask.transpose(2, 1, 0))
    again = read_volume(out)
    np.testing.assert_array_equal(again.data[..., 0], mask)
    np.testing.assert_allclose(again.affine, volume.affine, atol=1e-6)


def test_nifti_units_and_scaling_are_applied():
    xyz = np.arange(24 * 20 * 6, dtype=np.int16).reshape(24, 20, 6) % 100
    image = nibabel.Nifti1Image(xyz, np.diag([0.5, 0.5, 3.0, 1]))
    image.header.set_xyzt_units("micron")
    image.header.set_slope_inter(2.0, 1.0)
    volume = read_volume(image.to_bytes())
    assert volume.unit == "µm"
    assert volume.spacing == (3.0, 0.5, 0.5)
    assert volume.data.dtype == np.float32
    assert volume.data[0, 0, 1, 0] == 2.0 * xyz[1, 0, 0] + 1.0


def _header_bytes(**fields) -> bytearray:
    data = bytearray(_nifti(np.zeros((8, 8, 8), np.uint8), np.eye(4)))
    header = nibabel.Nifti1Header.from_fileobj(io.BytesIO(bytes(data[:348])))
    for key, value in fields.items():
        header[key] = value
    data[:348] = header.binaryblock
    return data


def test_nifti_with_absurd_dimensions_is_refused_from_its_header_alone():
    data = _header_bytes(dim=[3, 30000, 30000, 30000, 1, 1, 1, 1])
    with pytest.raises(ImageTooLargeError):
        read_volume(bytes(data))
    with pytest.raises(ImageTooLargeError):
        read_volume(gzip.compress(bytes(data)))


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"dim": [9, 8, 8, 8, 1, 1, 1, 1]}, "dim"),
        ({"dim": [3, 8, -8, 8, 1, 1, 1, 1]}, "dim"),
        ({"dim": [4, 8, 8, 8, 5, 1, 1, 1]}, "4-D"),
        ({"vox_offset": 1e9}, "offset"),
        ({"datatype": 32}, "complex"),
    ],
)
def test_nifti_with_a_broken_header_raises_volume_header_error(fields, match):
    with pytest.raises(VolumeHeaderError, match=match):
        read_volume(bytes(_header_bytes(**fields)))


def test_nifti_broken_magic_and_zero_voxel_size():
    data = _header_bytes()
    data[344:348] = b"xxxx"
    with pytest.raises(ImageError):
        read_volume(bytes(data))
    with pytest.raises(VolumeHeaderError, match="single-file NIfTI"):
        read_volume(gzip.compress(bytes(data)))
    with pytest.raises(VoxelSizeError, match="pixdim"):
        read_volume(bytes(_header_bytes(pixdim=[1, 1, 0, 1, 1, 1, 1, 1])))


def test_truncated_nifti_is_refused():
    data = bytes(_header_bytes())
    with pytest.raises(ImageError, match="truncated"):
        read_volume(data[:-100])
    with pytest.raises(ImageError, match="truncated"):
        read_volume(gzip.compress(data[:-100]))


def test_gzip_bomb_reads_only_what_the_header_declares():
    header = bytes(_header_bytes(dim=[3, 64, 64, 64, 1, 1, 1, 1]))
    payload = header[:352] + bytes(64**3) + bytes(200 * 2**20)  # 200 MB of zeros beyond the data
    bomb = gzip.compress(payload, compresslevel=1)
    assert len(bomb) < 2 * 2**20
    tracemalloc.start()
    try:
        volume = read_volume(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert volume.shape == (64, 64, 64)
    assert peak < 16 * 2**20, f"reading the bomb peaked at {peak / 2**20:.0f} MB"
