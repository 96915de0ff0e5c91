"""The shared HTTP fetcher every source uses.

- httpx with a timeout and FX-Cortex's User-Agent (a source may send its own headers);
- retries with exponential backoff and full jitter on connection errors, timeouts, 5xx and 429,
  honouring ``Retry-After``; never on any other 4xx, which will not get better by asking again;
- conditional GET: the ETag / Last-Modified of the last successful fetch of a URL is sent back,
  and a 304 answer means "unchanged", so a fetch loads nothing. Validators are staged in the
  `FetchContext` and committed by the runtime only once the fetch's quotes are stored;
- a per-source rate limit (a minimum interval between requests);
- `split_window` cuts a backfill into the chunk sizes an API allows (NBP: 93 days).

Every failure is a `SourceError` naming the source, the URL and the reason.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import attrs
import httpx

from fxcortex.core import FetchContext, FetchWindow, SourceError

USER_AGENT = "fxcortex/0.1 (+https://pypi.org/project/fxcortex-sources/)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@attrs.frozen(kw_only=True)
class HttpPayload:
    """A successful answer: the bytes as served, with the headers needed to read them."""

    url: str
    status: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower case (``text/xml``)."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def text(self, source: str, encoding: str | None = None) -> str:
        """The body decoded (declared charset, else ``encoding``, else UTF-8)."""
        charset = encoding or _charset(self.headers.get("content-type", "")) or "utf-8"
        try:
            return self.content.decode(charset)
        except (UnicodeDecodeError, LookupError) as error:
            raise SourceError(
                source, f"body is not {charset} text: {error}", location=self.url
            ) from error

    def json(self, source: str) -> Any:
        """The body parsed as JSON, numbers as `Decimal` (money never passes through a float).

        An HTML error page or garbage is a `SourceError`.
        """
        try:
            return json.loads(self.content, parse_float=Decimal, parse_int=Decimal)
        except ValueError as error:
            raise SourceError(
                source, f"expected JSON, got {_describe(self.content)}", location=self.url
            ) from error


class HttpStatusError(SourceError):
    """The server answered an error status (after retries, for the retryable ones)."""

    def __init__(self, source: str, status: int, phrase: str, url: str) -> None:
        self.status = status
        super().__init__(source, f"HTTP {status} {phrase}", location=url)


def _charset(content_type: str) -> str | None:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


def _describe(content: bytes) -> str:
    head = content[:200].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "an HTML page (an error or login page served in place of data?)"
    if not head:
        return "an empty body"
    return f"{content[:60]!r}…"


def looks_like_html(content: bytes) -> bool:
    """Whether a body is an HTML page, which publishers serve with status 200 on errors."""
    head = content[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<body" in head


@attrs.define
class HttpFetcher:
    """Fetches URLs for one source with retries, conditional GET and a rate limit."""

    source: str
    context: FetchContext | None = None
    timeout: float = 30.0
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    min_interval: float = 0.0
    headers: Mapping[str, str] = attrs.Factory(dict)
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _last_request: float | None = attrs.field(default=None, init=False)
    _client: httpx.Client | None = attrs.field(default=None, init=False)

    @classmethod
    def for_source(cls, source: str, context: FetchContext | None, **options: Any) -> HttpFetcher:
        """A fetcher for ``source`` keeping validators in, and its transport from, ``context``."""
        transport = context.http_transport if context is not None else None
        return cls(source, context, transport=transport, **options)

    def __enter__(self) -> HttpFetcher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        conditional: bool = True,
        accept: Collection[int] = (),
    ) -> HttpPayload | None:
        """GET ``url``; None when the server answers 304 Not Modified to our validators.

        An error status raises `HttpStatusError`, unless it is in ``accept`` (e.g. 404 where an
        API answers "no data for this range"): then the payload is returned with its status.
        """
        request_url = str(httpx.URL(url, params=params)) if params else url
        extra = dict(headers or {})
        key = f"http:{request_url}"
        if conditional and self.context is not None:
            remembered = self.context.recall(key)
            if remembered:
                validators = json.loads(remembered)
                if "etag" in validators:
                    extra["If-None-Match"] = validators["etag"]
                if "last_modified" in validators:
                    extra["If-Modified-Since"] = validators["last_modified"]
        response = self._send("GET", request_url, headers=extra)
        if response.status_code == 304:
            return None
        payload = self._payload(response, request_url, accept)
        if conditional and self.context is not None:
            validators = {}
            if etag := response.headers.get("etag"):
                validators["etag"] = etag
            if modified := response.headers.get("last-modified"):
                validators["last_modified"] = modified
            if validators:
                self.context.remember(key, json.dumps(validators).encode())
        return payload

    def post(
        self,
        url: str,
        *,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpPayload:
        """POST a form to ``url`` (never conditional)."""
        response = self._send("POST", url, headers=dict(headers or {}), data=data)
        return self._payload(response, url)

    def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _payload(
        self, response: httpx.Response, url: str, accept: Collection[int] = ()
    ) -> HttpPayload:
        if response.status_code >= 400 and response.status_code not in accept:
            raise HttpStatusError(self.source, response.status_code, response.reason_phrase, url)
        return HttpPayload(
            url=url,
            status=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            content=response.content,
        )

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                timeout=self.timeout,
                headers={"User-Agent": USER_AGENT, **self.headers},
                follow_redirects=True,
                transport=self.transport,
            )
        return self._client

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        data: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        problem = ""
        for attempt in range(1, self.max_attempts + 1):
            self._respect_rate_limit()
            try:
                response = self._http().request(method, url, headers=headers, data=data)
            except httpx.TransportError as error:  # connection refused, reset, timeouts, DNS
                problem = f"{type(error).__name__}: {error}"
                delay = self._backoff(attempt)
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                problem = f"HTTP {response.status_code} {response.reason_phrase}"
                delay = _retry_after(response) or self._backoff(attempt)
            if attempt < self.max_attempts:
                self.sleep(min(delay, self.backoff_max))
        raise SourceError(
            self.source,
            f"{method} failed after {self.max_attempts} attempts: {problem}",
            location=url,
        )

    def _backoff(self, attempt: int) -> float:
        # Full jitter: a random wait up to the exponential ceiling spreads out retrying clients.
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)

    def _respect_rate_limit(self) -> None:
        now = self.clock()
        if self._last_request is not None and self.min_interval > 0:
            wait = self._last_request + self.min_interval - now
            if wait > 0:
                self.sleep(wait)
                now += wait
        self._last_request = now


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def split_window(
    window: FetchWindow, max_days: int, *, earliest: date, today: date | None = None
) -> list[FetchWindow]:
    """Cut ``window`` into closed windows of at most ``max_days`` days, oldest first.

    An open start means the source's ``earliest`` day, an open end means ``today``.
    """
    if max_days < 1:
        raise ValueError("max_days must be at least 1")
    start = window.since or earliest
    end = window.until or today or datetime.now(UTC).date()
    chunks = []
    while start <= end:
        last = min(end, start + timedelta(days=max_days - 1))
        chunks.append(FetchWindow(since=start, until=last))
        start = last + timedelta(days=1)
    return chunks
