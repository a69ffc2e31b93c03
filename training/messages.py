"""One line for the user from any exception (the first non-empty line of its message, or its
type's name when the message is empty, as for a bare ``IndexError``). Escape codes that some
libraries put in their messages (colour, bold) are removed."""
from __future__ import annotations

import re

__all__ = ["one_line"]

_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def one_line(exc: BaseException | str) -> str:
    text = exc if isinstance(exc, str) else str(exc)
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        text = f"missing key {exc.args[0]!r}"           # str(KeyError('x')) is "'x'"
    for line in _ESCAPES.sub("", text).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__ if not isinstance(exc, str) else ""
