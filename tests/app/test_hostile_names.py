"""Hostile class names and file names are shown as plain text and never used as paths.

Streamlit renders widget labels, radio options, captions and alert texts as Markdown (with
GitHub extensions and its own ``:color[...]`` / ``:material/...:`` directives); HTML in
Markdown is not rendered, but links, images and emphasis are. The app escapes every ASCII
punctuation character of user text with a backslash (CommonMark's rule for "this character,
literally") and breaks bare URLs with an invisible word joiner. :func:`_assert_literal` checks
exactly that: the user's text appears with every punctuation character escaped.

The last tests run the real server in headless Chromium: a class and a file named with an
``<img onerror=...>`` create no element and run no script, and an over-limit upload gets
Streamlit's own message, which names the limit.
"""

from __future__ import annotations

import io
import json
import re
import zipfile

import numpy as np
import pytest

from tests.app.conftest import coins_strokes, download, draw, errors, new_app, png_bytes, upload

HOSTILE = {
    "html": "<img src=x onerror=alert(1)>",
    "markdown": "**b** [link](javascript:alert(1)) ![i](http://x.io/a.png)",
    "streamlit directives": ":red[alarm] :material/delete: $x^2$",
    "control characters": "nul\x00 esc\x1b[31m bidi\u202eevil",
    "path": "../../etc/passwd",
    "separators": "a/b\\c",
    "formula": '=HYPERLINK("http://evil.example","click")',
    "url": "http://evil.example www.evil.example me@evil.example",
}
_PUNCTUATION = r"[!-/:-@\[-`{-~]"
_SAFE_FILE_NAME = re.compile(r"[\w-][\w.-]*")


def _assert_literal(markdown: str, text: str) -> None:
    """``markdown`` contains ``text`` as literal characters: each of its ASCII punctuation
    characters backslash-escaped (invisible word joiners allowed in between, newlines shown
    as spaces), so no Markdown, HTML, link or directive can come out of it."""
    parts = [
        ("\\\\" + re.escape(ch)) if re.fullmatch(_PUNCTUATION, ch) else re.escape(ch) for ch in text.replace("\n", " ")
    ]
    assert re.search("\u2060?".join(parts), markdown), (text, markdown)


def _rename(at, index: int, name: str) -> str:
    spec = at.session_state["seg.classes"][index]
    at.text_input(key=f"w_class_name_{spec.id}").input(name).run()
    assert not at.exception, [e.message for e in at.exception]
    return at.session_state["seg.classes"][index].name


def _assert_safe_file_name(name: str) -> None:
    """Letters (any script), digits, ``._-`` only: :func:`seg.files.safe_stem`'s alphabet."""
    assert _SAFE_FILE_NAME.fullmatch(name) and ".." not in name, name


def _assert_safe_member(name: str) -> None:
    """No directory, drive, parent reference, hidden-file dot, control or invisible format
    character (letters of any script are fine)."""
    import unicodedata

    assert not re.search(r"[/\\:]|\.\.", name) and not name.startswith("."), name
    assert all(unicodedata.category(ch) not in ("Cc", "Cf") for ch in name), name


# --------------------------------------------------------------------------- class names


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_class_names_are_plain_text_everywhere_they_are_shown(kind):
    at = new_app()
    at.run()
    name = _rename(at, 1, HOSTILE[kind])
    # Kept as typed (runs of whitespace become one space; at most 60 characters).
    assert name == " ".join(HOSTILE[kind].split())[:60]
    draw(at, coins_strokes(at))
    assert at.session_state["seg.model"].class_names[1] == name

    _assert_literal(at.radio(key="w_active").options[1], name)  # "Draw with class"
    summary = next(c.value for c in at.caption if "Model" in c.value and "classes" in c.value)
    _assert_literal(summary, name)
    mask_help = next(s.help for s in at.session_state["seg.downloads"] if s.key == "w_dl_mask")
    _assert_literal(mask_help, name)
    # Select box options are plain text in Streamlit: the name as it is.
    assert any(o.endswith(name) for o in at.selectbox(key="w_view").options)

    # Files carry the name as data, never as a file name.
    for spec in at.session_state["seg.downloads"]:
        _assert_safe_file_name(spec.file_name)
    _, annotations = download(at, "w_dl_annotations")
    assert json.loads(annotations)["classes"][1]["name"] == name
    from seg.persist import load_model

    _, bundle = download(at, "w_dl_model")
    assert load_model(bundle).class_names[1] == name
    _, proba = download(at, "w_dl_proba")
    assert proba[:2] in (b"II", b"MM")

    # Measurement table and CSV: the name as text, formulas neutralised for spreadsheets.
    at.session_state["measure_panel"] = True
    at.run()
    assert not at.exception
    assert list(at.dataframe[0].value["class"]) == ["background", name]
    from seg.measure import rows_to_csv

    csv_text = rows_to_csv(at.session_state["seg.measurements"][1])
    if name.startswith("="):
        assert "'=HYPERLINK" in csv_text and "\n=HYPERLINK" not in csv_text


def test_a_duplicate_hostile_name_is_refused_with_an_escaped_warning():
    at = new_app()
    at.run()
    name = _rename(at, 1, HOSTILE["markdown"])
    at.button(key="w_new_class").click().run()
    _rename(at, 2, HOSTILE["markdown"])
    assert at.session_state["seg.classes"][2].name != name
    (warning,) = [w.value for w in at.warning]
    _assert_literal(warning, name)


# --------------------------------------------------------------------------- file names

_FILE_NAMES = {
    "html": "<img src=x onerror=alert(1)>.png",
    "markdown": "**bold** [x](javascript:alert(1)).png",
    "traversal": "../../etc/passwd.png",
    "separators": "a/b\\c.png",
    "control characters": "evil\x1b[2J\r\nname\x07\t.png",  # (Streamlit itself refuses NUL)
    "dots only": "...png",
    "unicode": "Zelle \u00e9t\u00e9 \u202eevil.png",
}


@pytest.mark.parametrize("kind", list(_FILE_NAMES))
def test_hostile_file_names_are_plain_text_and_downloads_get_safe_names(kind):
    file_name = _FILE_NAMES[kind]
    at = new_app()
    at.run()
    image = np.clip(np.random.default_rng(0).normal(80, 20, (40, 50)), 0, 255).astype(np.uint8)
    image[10:30, 20:40] += 120
    upload(at, "w_image_upload", file_name, png_bytes(image), "image/png")
    assert errors(at) == []
    assert at.session_state["seg.image"].name == file_name
    description = next(c.value for c in at.caption if "50×40 px" in c.value.replace("\\", ""))
    _assert_literal(description, file_name.replace("\n", " "))

    background, foreground = [c.color for c in at.session_state["seg.classes"][:2]]
    draw(at, [([(2.0, 3.0), (45.0, 3.0)], background), ([(25.0, 20.0), (35.0, 20.0)], foreground)], width=4)
    assert at.session_state["seg.prediction"] is not None
    names = [spec.file_name for spec in at.session_state["seg.downloads"]]
    assert len(names) == 5
    for name in names:
        _assert_safe_file_name(name)

    # A refused file quotes its (hostile) name literally in the error.
    upload(at, "w_image_upload", file_name.replace(".png", "-broken.png"), b"not an image at all", "image/png")
    (error,) = errors(at)
    _assert_literal(error, "not a PNG, JPEG, TIFF or BMP image")


def test_resuming_from_a_hostile_annotation_file_shows_its_names_literally():
    from seg.strokes import Annotations, Stroke

    at = new_app()
    at.run()
    shape = at.session_state["seg.image"].shape
    annotations = Annotations(
        [HOSTILE["html"], HOSTILE["markdown"]],
        ["#e69f00", "#56b4e9"],
        shape,
        [Stroke("path", 1, [(10, 158), (300, 158)], 6.0), Stroke("path", 2, [(198, 193), (226, 193)], 6.0)],
        image_name=HOSTILE["path"],
    )
    upload(
        at, "w_annotations_upload", "[x](javascript:alert(1)).json", annotations.to_json().encode(), "application/json"
    )
    assert errors(at) == []
    (flash,) = [s.value for s in at.success]
    _assert_literal(flash, "[x](javascript:alert(1)).json")
    options = at.radio(key="w_active").options
    _assert_literal(options[0], HOSTILE["html"])
    _assert_literal(options[1], HOSTILE["markdown"])


def test_hostile_file_names_in_a_batch_become_safe_archive_members():
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from tests.unit.test_batch import synthetic_scene, train_small

    page = str(Path(__file__).resolve().parents[2] / "pages" / "1_Batch_apply.py")
    image, truth = synthetic_scene(seed=0)
    at = AppTest.from_file(page, default_timeout=60)
    at.session_state["seg.model"] = train_small(image, truth)
    at.run()
    files = [(name, png_bytes(synthetic_scene(seed=i)[0])) for i, name in enumerate(_FILE_NAMES.values())]
    files.append(("<b>broken</b>\x1b[31m.png", b"\x89PNG\r\n\x1a\nbroken"))
    at.file_uploader(key="w_batch_images").set_value([(n, d, "image/png") for n, d in files])
    at.run()
    at.button(key="w_batch_run").click().run()
    assert not at.exception
    members = zipfile.ZipFile(io.BytesIO(at.session_state["batch.zip"])).namelist()
    assert len(members) == len(_FILE_NAMES) + 1  # one mask per good image + the CSV
    for member in members:
        _assert_safe_member(member)
    # The failure is reported as plain text (st.text, not Markdown).
    assert any("broken" in t.value for t in at.text)
    assert not any("broken" in m.value for m in at.markdown)


# --------------------------------------------------------------------------- in the browser


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    from tests.e2e import helpers as H

    with sync_playwright() as playwright:
        browser = H.launch_browser(playwright)
        yield browser
        browser.close()


@pytest.mark.e2e
@pytest.mark.slow
def test_html_in_a_class_name_and_a_file_name_creates_no_element_and_runs_nothing(browser, tmp_path):
    from tests.e2e import helpers as H
    from tests.load.helpers import serve

    class_name = '<img src=x onerror="window.__pwned=1">'
    file_name = '<img src=y onerror="window.__pwned=2">.png'
    image = np.clip(np.random.default_rng(0).normal(80, 20, (60, 80)), 0, 255).astype(np.uint8)
    image[20:40, 30:60] += 120
    with serve(tmp_path / "server.log", env={}) as server:
        page = H.new_page(browser)
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        H.open_app(page, server.url)
        H.upload_files(page, "w_image_upload", {"name": file_name, "mimeType": "image/png", "buffer": png_bytes(image)})
        page.get_by_text("80×60 px", exact=False).first.wait_for()
        box = page.locator(".st-key-w_class_name_2 input")
        box.fill(class_name)
        box.press("Enter")
        H.wait_until_settled(page)
        # Both names are on the page as text (Chromium sends '"' in a file name as %22) ...
        assert page.get_by_text(class_name, exact=False).count() >= 1
        assert page.get_by_text("<img src=y onerror=", exact=False).count() >= 1
        # ... and neither became an element or ran.
        assert page.locator("img[src='x'], img[src='y']").count() == 0
        assert page.evaluate("() => document.querySelectorAll('img[onerror]').length") == 0
        assert page.evaluate("() => window.__pwned") is None
        assert dialogs == []
        assert H.exception_texts(page) == []
        page.context.close()


@pytest.mark.e2e
@pytest.mark.slow
def test_a_file_over_the_upload_limit_gets_streamlits_message_naming_the_limit(browser, tmp_path):
    """``.streamlit/config.toml`` sets ``server.maxUploadSize`` (MB). Streamlit's uploader refuses
    bigger files in the browser (the server refuses them too, with HTTP 413) and says why; the
    app never sees them. Here the limit is lowered to 1 MB to exercise it with a small file."""
    import os
    import tomllib

    from tests.e2e import helpers as H
    from tests.load.helpers import serve

    config = tomllib.loads((H.REPO / ".streamlit" / "config.toml").read_text())
    assert 1 <= config["server"]["maxUploadSize"] <= 1000
    with serve(tmp_path / "server.log", env={}, server_maxUploadSize=1) as server:
        page = H.new_page(browser)
        H.open_app(page, server.url)
        before = page.locator(".st-key-w_image_upload").inner_text()
        H.upload_files(
            page, "w_image_upload", {"name": "big.png", "mimeType": "image/png", "buffer": os.urandom(1_500_000)}
        )
        message = page.get_by_text("File must be 1.0MB or smaller.")
        message.wait_for()
        assert "big.png" in page.locator(".st-key-w_image_upload").inner_text()
        assert H.error_texts(page) == [] and H.exception_texts(page) == []
        assert "big.png" not in before
        page.context.close()
