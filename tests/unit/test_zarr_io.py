"""seg.io: OME-Zarr 0.4/0.5 and tiled TIFFs read lazily; hostile metadata refused; written label
metadata valid against the OME-Zarr spec's own JSON schemas; zipped stores."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from seg.errors import ImageTooLargeError, OmeZarrError
from seg.io import LabelStoreWriter, check_zip_store, open_lazy_image, zip_store
from seg.io.ngff import Axis
from tests.unit.zarr_helpers import set_attributes, write_ome_zarr


def _schema_folder(version: str) -> Path:
    """The OME-Zarr specification's JSON schemas for ``version``, as the ngff-zarr wheel ships them."""
    import importlib.resources

    return Path(str(importlib.resources.files("ngff_zarr") / "spec" / version / "schemas"))


RNG = np.random.default_rng(5)


def _image(shape, dtype=np.uint8):
    return RNG.integers(0, 250, size=shape).astype(dtype)


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize(
    "axes, shape, frames, channels",
    [
        ("yx", (70, 90), 1, 1),
        ("cyx", (3, 70, 90), 1, 3),
        ("tczyx", (2, 1, 3, 70, 90), 6, 1),
        ("zyx", (4, 70, 90), 4, 1),
    ],
)
def test_ome_zarr_is_read_lazily_as_frames_and_channels(tmp_path, version, axes, shape, frames, channels):
    import dask.array as da

    data = _image(shape, np.uint16)
    store = write_ome_zarr(
        tmp_path / "img.ome.zarr",
        [data],
        axes,
        version=version,
        chunks=[1 if a in "tcz" else 32 for a in axes],
        scale0=[0.5 if a == "x" else 0.25 if a == "y" else 1.0 for a in axes],
    )
    image = open_lazy_image(store)
    assert isinstance(image.data, da.Array)
    assert image.data.shape == (frames, 70, 90, channels)
    assert image.version == version and image.axes == tuple(Axis(a, image.axes[i].unit) for i, a in enumerate(axes))
    # frames are t then z (outer first), channels last: the layout of seg.images.read_image
    names = list(axes)
    order = [names.index(n) for n in "tz" if n in names] + [names.index("y"), names.index("x")]
    expected = np.transpose(data, order + ([names.index("c")] if "c" in names else []))
    expected = expected.reshape(frames, 70, 90, channels)
    np.testing.assert_array_equal(image.data.compute(), expected)
    assert image.pixel_area == (0.125, "micrometer")


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_a_resolution_level_is_chosen_with_its_physical_scale(tmp_path, version):
    full = _image((64, 80))
    store = write_ome_zarr(tmp_path / "p.zarr", [full, full[::2, ::2]], "yx", version=version, scale0=[0.3, 0.3])
    image = open_lazy_image(store, level=1)
    assert image.data.shape == (1, 32, 40, 1) and image.levels == 2
    assert image.scale == pytest.approx((0.6, 0.6))
    np.testing.assert_array_equal(image.data.compute()[0, ..., 0], full[::2, ::2])
    with pytest.raises(OmeZarrError, match="level 2 .* levels 0 to 1"):
        open_lazy_image(store, level=2)


def test_tiled_compressed_tiff_is_read_chunk_by_chunk(tmp_path):
    data = _image((300, 260, 3))
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, data, tile=(64, 64), compression="zlib", photometric="rgb")
    image = open_lazy_image(path)
    assert image.data.shape == (1, 300, 260, 3) and image.version is None
    assert image.data.chunks[1][0] == 64  # blocks are the TIFF's tiles: read lazily
    np.testing.assert_array_equal(image.data.compute()[0], data)


def test_ome_tiff_pixel_size_is_kept(tmp_path):
    data = _image((128, 96))
    path = tmp_path / "scaled.ome.tif"
    tifffile.imwrite(
        path,
        data,
        tile=(32, 32),
        compression="zlib",
        ome=True,
        metadata={"axes": "YX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.25},
    )
    image = open_lazy_image(path)
    assert image.scale == (0.25, 0.5)
    assert image.pixel_area == (0.125, "micrometer")


def test_tiff_stack_frames_follow_tifffile_axes(tmp_path):
    data = _image((3, 50, 40))
    path = tmp_path / "stack.ome.tif"
    tifffile.imwrite(path, data, tile=(32, 32), compression="zlib", metadata={"axes": "ZYX"}, ome=True)
    image = open_lazy_image(path)
    np.testing.assert_array_equal(image.data.compute()[..., 0], data)


# --------------------------------------------------------------------------- hostile metadata


def _multiscale(**changes):
    base = {
        "version": "0.4",
        "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
        "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1]}]}],
    }
    base.update(changes)
    return {"multiscales": [base]}


@pytest.mark.parametrize(
    "attributes, message",
    [
        ({}, "no OME 'multiscales'"),
        ({"multiscales": "x"}, "'multiscales'"),
        (_multiscale(version="0.3"), "'0.4' or '0.5'"),
        (_multiscale(axes=[{"name": "q"}, {"name": "x"}]), "one of t, c, z, y, x"),
        (_multiscale(axes=[{"name": "x"}, {"name": "y"}]), "ending with y, x"),
        (_multiscale(axes=[{"name": "y", "type": "time"}, {"name": "x"}]), "type of axis 'y'"),
        (_multiscale(axes=[{"name": "y", "unit": "u" * 500}, {"name": "x"}]), "1 to 64 characters"),
        (_multiscale(datasets=[]), "1 to 32 items"),
        (
            _multiscale(
                datasets=[{"path": "../../etc", "coordinateTransformations": [{"type": "scale", "scale": [1, 1]}]}]
            ),
            "no '..'",
        ),
        (
            _multiscale(datasets=[{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, -2]}]}]),
            "finite numbers > 0",
        ),
        (
            _multiscale(datasets=[{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, "1"]}]}]),
            "numbers",
        ),
        (
            _multiscale(datasets=[{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1]}]}]),
            "2 numbers",
        ),
        (
            _multiscale(datasets=[{"path": "9", "coordinateTransformations": [{"type": "scale", "scale": [1, 1]}]}]),
            "no array there",
        ),
        ({"ome": {"version": "0.5", "multiscales": []}}, "OME-Zarr 0.5 metadata in a Zarr v2"),
    ],
)
def test_hostile_metadata_is_refused_with_one_error_type(tmp_path, attributes, message):
    store = write_ome_zarr(tmp_path / "h.zarr", [_image((40, 40))], "yx")
    set_attributes(store, "0.4", attributes)
    with pytest.raises(OmeZarrError, match=message):
        open_lazy_image(store)


def test_oversized_or_broken_metadata_files_are_refused_before_parsing(tmp_path):
    store = write_ome_zarr(tmp_path / "big.zarr", [_image((40, 40))], "yx")
    (store / ".zattrs").write_text(json.dumps({"multiscales": [], "pad": "x" * (2 << 20)}))
    with pytest.raises(OmeZarrError, match="above the limit"):
        open_lazy_image(store)
    (store / ".zattrs").write_text('{"multiscales": [NaN]}')
    with pytest.raises(OmeZarrError, match="not valid JSON"):
        open_lazy_image(store)
    (store / ".zattrs").write_text("[" * 100_000)
    with pytest.raises(OmeZarrError, match="not valid JSON"):
        open_lazy_image(store)


def test_unsupported_dtype_huge_chunks_and_too_many_pixels_are_refused(tmp_path):
    store = write_ome_zarr(tmp_path / "i16.zarr", [_image((40, 40), np.int16)], "yx")
    with pytest.raises(OmeZarrError, match="int16 pixels"):
        open_lazy_image(store)
    import zarr

    group = zarr.open_group(tmp_path / "chunky.zarr", mode="w", zarr_format=3)
    group.create_array("0", shape=(100_000, 100_000), chunks=(100_000, 100_000), dtype="uint8")
    group.attrs["ome"] = {"version": "0.5", "multiscales": [_multiscale()["multiscales"][0]]}
    with pytest.raises(OmeZarrError, match="per chunk"):
        open_lazy_image(tmp_path / "chunky.zarr", max_pixels=10**11)
    with pytest.raises(ImageTooLargeError, match="--max-pixels"):
        open_lazy_image(tmp_path / "chunky.zarr")


def test_a_plain_folder_is_not_taken_for_a_store(tmp_path):
    (tmp_path / "notes").mkdir()
    with pytest.raises(OmeZarrError, match="neither an OME-Zarr store nor a TIFF"):
        open_lazy_image(tmp_path / "notes")


# --------------------------------------------------------------------------- written metadata


def _validator(version: str, name: str):
    """A validator for the spec's ``name`` schema, resolving its references to the other schemas."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    resources = []
    for path in sorted(_schema_folder(version).glob("*.schema")):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema, default_specification=DRAFT202012)))
    schema = json.loads((_schema_folder(version) / f"{name}.schema").read_text())
    return jsonschema.Draft202012Validator(schema, registry=Registry().with_resources(resources))


def _attributes(path: Path, version: str) -> dict:
    if version == "0.5":
        return json.loads((path / "zarr.json").read_text())["attributes"]
    return json.loads((path / ".zattrs").read_text())


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_written_label_metadata_is_valid_against_the_spec_schemas(tmp_path, version):
    import zarr

    out = tmp_path / "out.zarr"
    shape = (2, 2500, 1500)
    writer = LabelStoreWriter(
        out,
        version=version,
        axes=(Axis("t", "second"), Axis("y", "micrometer"), Axis("x", "micrometer")),
        shape=shape,
        scale=(1.0, 0.5, 0.5),
        dtype=np.uint8,
        n_classes=3,
    )
    labels = RNG.integers(1, 4, size=shape).astype(np.uint8)
    writer.label_array[...] = labels
    writer.write_pyramid()
    writer.finish(
        ["cell", "membrane", "background"],
        ["#ff0000", "#00ff00", "#0000ff"],
        properties=[{"pixels": 1}, {"pixels": 2}, {"pixels": 3}],
    )
    label_image = out / "labels" / "segmentation"
    attributes = _attributes(label_image, version)
    _validator(version, "strict_label").validate(attributes)
    _validator(version, "strict_image").validate(attributes)
    _validator(version, "strict_image").validate(_attributes(out, version))  # probabilities
    ome = attributes["ome"] if version == "0.5" else attributes
    assert [c["label-value"] for c in ome["image-label"]["colors"]] == [0, 1, 2, 3]
    assert ome["image-label"]["colors"][1]["rgba"] == [255, 0, 0, 255]
    assert [p["class"] for p in ome["image-label"]["properties"]] == ["cell", "membrane", "background"]
    labels_group = _attributes(out / "labels", version)
    assert (labels_group["ome"] if version == "0.5" else labels_group)["labels"] == ["segmentation"]
    # nearest-neighbour pyramid: every level is the full labels sampled every 2**k pixels
    datasets = ome["multiscales"][0]["datasets"]
    assert len(datasets) == 3  # 2500 -> 1250 -> 625 fits a 1024 chunk
    for k, dataset in enumerate(datasets):
        level = zarr.open_array(label_image / dataset["path"], mode="r")
        np.testing.assert_array_equal(level[...], labels[:, :: 2**k, :: 2**k])
        assert dataset["coordinateTransformations"][0]["scale"] == [1.0, 0.5 * 2**k, 0.5 * 2**k]
        assert level.chunks == (1, *(min(n, 1024) for n in level.shape[1:]))
        assert level.dtype == np.uint8
    if version == "0.5":
        assert zarr.open_array(label_image / "0", mode="r").metadata.dimension_names == ("t", "y", "x")
    # and seg reads its own output back as an image with the same scale
    assert open_lazy_image(label_image).scale == (1.0, 0.5, 0.5)


def test_an_unfinished_writer_leaves_no_store_under_the_final_name(tmp_path):
    out = tmp_path / "out.zarr"
    writer = LabelStoreWriter(
        out, version="0.4", axes=(Axis("y"), Axis("x")), shape=(50, 50), scale=(1, 1), dtype=np.uint8
    )
    writer.label_array[...] = 1  # the process dies here: finish() never runs
    assert not out.exists()
    with pytest.raises(OmeZarrError):
        open_lazy_image(out)
    # the next run starts afresh and removes the leftover
    again = LabelStoreWriter(
        out, version="0.4", axes=(Axis("y"), Axis("x")), shape=(50, 50), scale=(1, 1), dtype=np.uint8
    )
    again.label_array[...] = 2
    again.finish(["a", "b"], ["#000000", "#ffffff"])
    assert out.is_dir() and not (tmp_path / "out.zarr.part").exists()


def test_the_writer_refuses_to_replace_something_that_is_not_a_store(tmp_path):
    (tmp_path / "thesis.zarr").mkdir()
    (tmp_path / "thesis.zarr" / "chapter1.txt").write_text("precious")
    with pytest.raises(OmeZarrError, match="not a Zarr store"):
        LabelStoreWriter(
            tmp_path / "thesis.zarr",
            version="0.4",
            axes=(Axis("y"), Axis("x")),
            shape=(5, 5),
            scale=(1, 1),
            dtype=np.uint8,
        )
    assert (tmp_path / "thesis.zarr" / "chapter1.txt").read_text() == "precious"


# --------------------------------------------------------------------------- zipped stores


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_a_zipped_store_reads_like_the_folder(tmp_path, version):
    data = _image((70, 50))
    store = write_ome_zarr(tmp_path / "z.ome.zarr", [data], "yx", version=version, chunks=(32, 32))
    target = tmp_path / "z.ome.zarr.zip"
    zip_store(store, target)
    with zipfile.ZipFile(target) as archive:
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
    np.testing.assert_array_equal(open_lazy_image(target).data.compute()[0, ..., 0], data)


def _zip(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(
    "members, message",
    [
        ({".zattrs": b"{}", "../evil": b"x"}, "plain relative names"),
        ({".zattrs": b"{}", "/etc/passwd": b"x"}, "plain relative names"),
        ({"img.ome.zarr/.zattrs": b"{}"}, "zip that folder's contents"),
        ({"readme.txt": b"hello"}, "not a zipped OME-Zarr store"),
    ],
)
def test_unsafe_or_foreign_zips_are_refused(tmp_path, members, message):
    with pytest.raises(OmeZarrError, match=message):
        check_zip_store(_zip(tmp_path / "u.zip", members))


def test_zip_bombs_and_non_zips_are_refused(tmp_path):
    bomb = _zip(tmp_path / "b.zip", {".zattrs": b"{}", "0/0.0": bytes(200 << 20)}, compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(OmeZarrError, match="zip bomb|more than any chunk"):
        check_zip_store(bomb)
    (tmp_path / "n.zip").write_bytes(b"not a zip at all")
    with pytest.raises(OmeZarrError, match="not a readable zip"):
        open_lazy_image(tmp_path / "n.zip")
