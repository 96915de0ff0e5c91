"""Fixtures of the source tests: ECB payloads in every format, the real bundled history, a local
HTTP server."""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
import pytest

from fxcortex.core import Quote, SourceError
from fxcortex.sources.ecb import bundled_history, parse

ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"'
    ' xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">\n'
    " <gesmes:subject>Reference rates</gesmes:subject>\n"
    " <gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>\n"
    " <Cube>{days}\n </Cube>\n"
    "</gesmes:Envelope>\n"
)


class Payloads:
    """Builders of small ECB payloads, shaped like the real ones (see SOURCES.md)."""

    @staticmethod
    def history_csv(codes: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]]) -> bytes:
        """``eurofxref-hist.csv``: ``Date,USD,…,`` then one line per day, trailing commas."""
        lines = ["Date," + ",".join(codes) + ","]
        lines += [day + "," + ",".join(values) + "," for day, values in rows]
        return ("\n".join(lines) + "\n").encode()

    @staticmethod
    def daily_csv(codes: Sequence[str], day: str, values: Sequence[str]) -> bytes:
        """``eurofxref.csv``: comma-space separators and the date written out."""
        return (
            "Date, " + ", ".join(codes) + ", \n" + day + ", " + ", ".join(values) + ", \n"
        ).encode()

    @staticmethod
    def xml(days: Mapping[str, Mapping[str, str]]) -> bytes:
        """A gesmes envelope (daily, 90-day or full history) holding these days, in this order."""
        cubes = "".join(
            f"\n  <Cube time='{day}'>"
            + "".join(f"<Cube currency='{code}' rate='{rate}'/>" for code, rate in rates.items())
            + "</Cube>"
            for day, rates in days.items()
        )
        return ENVELOPE.format(days=cubes).encode()

    @staticmethod
    def zipped(members: Mapping[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
        """A zip archive holding these members."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
            for name, content in members.items():
                archive.writestr(name, content)
        return buffer.getvalue()


@pytest.fixture(scope="session")
def payloads() -> type[Payloads]:
    """Builders of ECB payloads: ``history_csv``, ``daily_csv``, ``xml``, ``zipped``."""
    return Payloads


@pytest.fixture
def refusal() -> Callable[..., SourceError]:
    """``refusal(payload, **parse_options)``: the `SourceError` that parsing ``payload`` raises."""

    def refuse(payload: bytes, **options: Any) -> SourceError:
        with pytest.raises(SourceError) as caught:
            parse(payload, **options)
        return caught.value

    return refuse


@pytest.fixture(scope="session")
def history_csv_lines() -> list[str]:
    """The lines of the real bundled ECB history CSV: the header, then the newest day first."""
    with zipfile.ZipFile(bundled_history()) as archive:
        return archive.read("eurofxref-hist.csv").decode().splitlines()


@pytest.fixture(scope="session")
def bundled_quotes() -> list[Quote]:
    """Every quote of the bundled history, parsed once per session."""
    return parse(bundled_history().read_bytes(), label=bundled_history().name)


@attrs.define
class Served:
    """What the local server answers on one path."""

    status: int
    body: bytes
    content_type: str


@attrs.define
class LocalServer:
    """A local HTTP server answering fixed payloads; remembers the headers of every request."""

    base_url: str
    routes: dict[str, Served] = attrs.Factory(dict)
    requests: list[dict[str, str]] = attrs.Factory(list)

    def serve(
        self, path: str, body: bytes, status: int = 200, content_type: str = "application/zip"
    ) -> str:
        """Answer ``path`` with ``body``; returns its URL."""
        self.routes[path] = Served(status, body, content_type)
        return self.base_url + path


@pytest.fixture
def http_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalServer]:
    """A `LocalServer` on 127.0.0.1, with proxies switched off so requests reach it."""
    for variable in (
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(variable, raising=False)
    state: dict[str, LocalServer] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server = state["server"]
            server.requests.append({k.lower(): v for k, v in self.headers.items()})
            missing = Served(404, b"<html>not found</html>", "text/html")
            served = server.routes.get(self.path, missing)
            self.send_response(served.status)
            self.send_header("Content-Type", served.content_type)
            self.send_header("Content-Length", str(len(served.body)))
            self.end_headers()
            self.wfile.write(served.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["server"] = LocalServer(base_url=f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield state["server"]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
