"""Text that came from a user's file: is it encodable, and how to print it on a terminal.

JSON escapes can spell lone surrogates (``"\\ud800"``), which are valid Python ``str`` values but
cannot be written as UTF-8: a class name like that would load, then crash whatever writes it
(a CSV, a model file, a terminal). Such text is refused where it enters (:func:`is_encodable`).
Names printed on a terminal go through :func:`printable`, so a file cannot send ANSI escape
sequences or other control characters to the user's terminal.
"""

from __future__ import annotations

import re

__all__ = ["is_encodable", "printable"]

# C0 and C1 control characters (ESC starts ANSI sequences; CSI is U+009B), DEL, and the
# bidirectional overrides that can make a name display as something else.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def is_encodable(text: str) -> bool:
    """True if ``text`` can be written as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str) -> str:
    """``text`` with control characters (ANSI escapes included) and unencodable code points
    replaced by U+FFFD, safe to print on a terminal or in a log."""
    text = text.encode("utf-8", "replace").decode("utf-8") if not is_encodable(text) else text
    return _UNPRINTABLE.sub("\ufffd", text)
