"""Replaying recorded HTTP responses to a source's real fetching code, for offline tests.

A recording folder holds pairs ``NNN.json`` (method, URL, status, headers) and ``NNN.body`` (the
bytes as served). `recorded_transport` answers each request whose method and URL match a recording
(query parameters compared as sets) and fails loudly on any other, so a test shows exactly which
request a source made that nobody recorded::

    context = FetchContext(http_transport=recorded_transport(FIXTURES / "nbp"))
    quotes = list(NbpSource().fetch(window, context))
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx


def _normalised(url: str) -> tuple[str, frozenset[tuple[str, str]]]:
    parsed = httpx.URL(url)
    return str(parsed.copy_with(query=None)), frozenset(parsed.params.multi_items())


def recorded_transport(folder: Path, *, strict: bool = True) -> httpx.MockTransport:
    """A transport serving the recordings in ``folder`` (see the module docstring)."""
    recordings: dict[tuple[str, tuple[str, frozenset[tuple[str, str]]]], httpx.Response] = {}
    for meta_path in sorted(folder.glob("*.json")):
        meta = json.loads(meta_path.read_text())
        headers = [
            (name, value) for name, values in meta.get("headers", {}).items() for value in values
        ]
        body = meta_path.with_suffix(".body").read_bytes()
        key = (meta["method"].upper(), _normalised(meta["url"]))
        recordings[key] = httpx.Response(meta["status"], headers=headers, content=body)

    def handler(request: httpx.Request) -> httpx.Response:
        key = (request.method, _normalised(str(request.url)))
        if key in recordings:
            recorded = recordings[key]
            return httpx.Response(
                recorded.status_code, headers=recorded.headers, content=recorded.content
            )
        if strict:
            known = "\n  ".join(f"{method} {url}" for method, (url, _) in recordings)
            raise AssertionError(
                f"no recording for {request.method} {request.url}; recorded:\n  {known}"
            )
        return httpx.Response(404)

    return httpx.MockTransport(handler)
