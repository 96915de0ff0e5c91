"""Source options as configuration gives them (text), each checked, typed and named in its errors.

Every HTTP source takes the same three: ``timeout`` (seconds, more than 0), ``max_attempts``
(HTTP attempts, at least 1) and ``backoff`` (the first retry's ceiling in seconds, 0 to retry at
once). `http_options` reads them; a source reads its own options beside them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

from fxcortex.core import SourceError

HTTP_OPTIONS = ("timeout", "max_attempts", "backoff")


def reject_unknown(source: str, options: Mapping[str, str], known: Collection[str]) -> None:
    """Fail, naming them, when ``options`` has any not in ``known``."""
    unknown = set(options) - set(known)
    if unknown:
        raise SourceError(source, f"unknown options {sorted(unknown)}; known: {', '.join(known)}")


def seconds(source: str, option: str, text: str, *, zero: bool) -> float:
    """``text`` as a finite number of seconds, at least 0 (``zero``) or more than 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise SourceError(source, f"{option} {text!r} is not a positive number of seconds")
    return value


def attempts(source: str, text: str) -> int:
    """``text`` as a number of attempts, at least 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise SourceError(source, f"max_attempts {text!r} is not a whole number of at least 1")
    return int(text)


def http_options(source: str, options: Mapping[str, str]) -> dict[str, object]:
    """The typed values of the `HTTP_OPTIONS` present in ``options``, by name."""
    changes: dict[str, object] = {}
    if "timeout" in options:
        changes["timeout"] = seconds(source, "timeout", options["timeout"], zero=False)
    if "max_attempts" in options:
        changes["max_attempts"] = attempts(source, options["max_attempts"])
    if "backoff" in options:
        changes["backoff"] = seconds(source, "backoff", options["backoff"], zero=True)
    return changes
