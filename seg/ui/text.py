"""Showing user-supplied text safely: markdown escaping (safe file names: :mod:`seg.files`)."""

from __future__ import annotations

import re
import string

_MARKDOWN_SPECIAL = re.compile("([" + re.escape(string.punctuation) + "])")
# GitHub-flavoured Markdown turns bare URLs, "www." and e-mail addresses into links even when
# every punctuation character is escaped; an invisible word joiner breaks those patterns.
_AUTOLINK = re.compile(r"(?i)(?<=[a-z0-9])(?=:)|(?<=www)(?=\.)|(?<=@)")
_JOINER = "\u2060"


def escape_markdown(text: str) -> str:
    """``text`` with every ASCII punctuation character backslash-escaped.

    Widget labels and radio options are rendered as Markdown (links, images, ``:red[...]``
    directives); a class named ``![x](http://...)`` must show as those characters, not fetch an
    image. CommonMark allows a backslash before any ASCII punctuation, so this shows the same
    characters (bare URLs additionally get an invisible word joiner so they are not linked).
    """
    text = _AUTOLINK.sub(_JOINER, str(text).replace("\n", " "))
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)
