"""The shared fetcher: retries, conditional GET, rate limits and chunked windows.

The server side is an httpx.MockTransport: these are unit tests of the fetcher's own logic.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from datetime import date

import httpx
import pytest

from fxcortex.core import FetchContext, FetchWindow, SourceError
from fxcortex.sources.http import HttpFetcher, split_window


class DictCache:
    """The smallest `Cache`: enough to keep validators between fetches."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        return {key: self.values[key] for key in keys if key in self.values}

    def commit(self, puts: Mapping[str, bytes], deletes: Iterable[str] = ()) -> None:
        self.values.update(puts)

    def close(self) -> None:
        pass


def fetcher_for(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    context: FetchContext | None = None,
    **options: object,
) -> tuple[HttpFetcher, list[float]]:
    waits: list[float] = []
    fetcher = HttpFetcher(
        "test",
        context,
        transport=httpx.MockTransport(handler),
        sleep=waits.append,
        **options,  # type: ignore[arg-type]
    )
    return fetcher, waits


def test_server_errors_and_throttling_are_retried_honouring_retry_after() -> None:
    answers = iter(
        [
            httpx.Response(503),
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(200, content=b"ok"),
        ]
    )
    fetcher, waits = fetcher_for(lambda request: next(answers))
    payload = fetcher.get("https://example.test/rates")
    assert payload is not None and payload.content == b"ok"
    assert len(waits) == 2 and waits[1] == 7


def test_a_client_error_is_not_retried_and_names_the_status_and_url() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(404)

    fetcher, waits = fetcher_for(handler)
    with pytest.raises(SourceError, match="HTTP 404") as raised:
        fetcher.get("https://example.test/missing")
    assert len(calls) == 1 and waits == []
    assert raised.value.location == "https://example.test/missing"


def test_connection_failures_give_up_after_the_attempts_with_a_source_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    fetcher, waits = fetcher_for(refuse, max_attempts=3)
    with pytest.raises(SourceError, match="after 3 attempts: ConnectError"):
        fetcher.get("https://example.test/")
    assert len(waits) == 2 and all(0 <= wait <= 30 for wait in waits)


def test_an_unchanged_publication_costs_a_304_once_validators_are_committed() -> None:
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        if request.headers.get("if-none-match") == '"v1"':
            return httpx.Response(304)
        return httpx.Response(200, content=b"data", headers={"ETag": '"v1"'})

    cache = DictCache()
    first = FetchContext(cache=cache)
    fetcher, _ = fetcher_for(handler, context=first)
    assert fetcher.get("https://example.test/daily") is not None
    # Not committed yet (as if the load had failed): the next fetch must get the full body again.
    again, _ = fetcher_for(handler, context=FetchContext(cache=cache))
    assert again.get("https://example.test/daily") is not None
    cache.commit(first.staged)
    later, _ = fetcher_for(handler, context=FetchContext(cache=cache))
    assert later.get("https://example.test/daily") is None
    assert "if-none-match" not in seen[0] and seen[-1]["if-none-match"] == '"v1"'


def test_requests_are_spaced_by_the_rate_limit() -> None:
    now = [100.0]
    fetcher, waits = fetcher_for(lambda request: httpx.Response(200), min_interval=2.0)
    fetcher.clock = lambda: now[0]
    fetcher.get("https://example.test/a")
    now[0] += 0.5
    fetcher.get("https://example.test/b")
    assert waits == [1.5]


def test_an_html_page_served_instead_of_json_is_a_source_error() -> None:
    fetcher, _ = fetcher_for(lambda request: httpx.Response(200, content=b"<!DOCTYPE html><p>Busy"))
    payload = fetcher.get("https://example.test/api")
    assert payload is not None
    with pytest.raises(SourceError, match="HTML page"):
        payload.json("test")


def test_a_backfill_is_cut_into_chunks_no_longer_than_the_api_allows() -> None:
    chunks = split_window(
        FetchWindow(since=date(2024, 1, 1), until=date(2024, 12, 31)), 93, earliest=date(2002, 1, 2)
    )
    assert chunks[0].since == date(2024, 1, 1) and chunks[-1].until == date(2024, 12, 31)
    assert all((c.until - c.since).days < 93 for c in chunks if c.since and c.until)
    assert all(
        (b.since - a.until).days == 1 for a, b in itertools.pairwise(chunks) if a.until and b.since
    )
    open_start = split_window(FetchWindow(), 93, earliest=date(2024, 1, 1), today=date(2024, 2, 1))
    assert open_start[0].since == date(2024, 1, 1) and open_start[-1].until == date(2024, 2, 1)
