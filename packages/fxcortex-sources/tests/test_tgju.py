"""TGJU: the free-market rial board and its daily history, in rial per one unit, Tehran time.

Payloads follow the shapes in SOURCES.md (the board's ``current`` object, the history API's
DataTables rows) with realistic 2026 prices; HTTP is served by an httpx.MockTransport.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.core import FetchContext, FetchWindow, Pair, Quote, QuoteKind, SourceError
from fxcortex.sources.tgju import (
    TgjuSource,
    fxcortex_register_sources,
    normalise_digits,
    parse_board,
    parse_history,
    read_history,
)

NOW = datetime(2026, 10, 3, 12, 0, tzinfo=UTC)  # 15:30 in Tehran


def board(**items: Any) -> bytes:
    return json.dumps({"current": items}, ensure_ascii=False).encode()


def item(p: str, ts: str = "2026-10-03 15:04:00", **more: Any) -> dict[str, Any]:
    return {"p": p, "h": p, "l": p, "d": "0", "dp": 0, "dt": "", "t": "۱۵:۰۴:۰۰", "ts": ts, **more}


BOARD = board(
    price_dollar_rl=item("1,064,500"),
    price_eur=item("1,243,100", "2026-10-03 15:03:12"),
    price_jpy=item("712,300"),
    geram18=item("97,551,000"),
    sekee=item("1,185,000,000"),
    ons={"p": "4,144.74", "ts": "2026-10-03 15:04:00"},
    crypto_bitcoin=item("121,345.6"),
)


def row(day: date, close: str, *, tags: bool = True) -> list[str]:
    change = '<span class="high" dir="ltr">4,500</span>' if tags else "4,500"
    return [
        "1,060,000",
        "1,055,000",
        "1,072,000",
        close,
        change,
        "0.42%",
        day.strftime("%Y/%m/%d"),
        "1405/07/11",
    ]


def history(rows: list[list[str]], total: int = 3500) -> bytes:
    return json.dumps(
        {"draw": 0, "recordsTotal": total, "recordsFiltered": total, "data": rows}
    ).encode()


HISTORY = history(
    [
        row(date(2026, 10, 3), "1,064,500"),
        row(date(2026, 10, 2), "<span>1,060,000</span>"),
        row(date(2026, 10, 1), "1,058,200", tags=False),
    ]
)


def source(**options: str) -> TgjuSource:
    return attrs.evolve(
        TgjuSource().configure(**options), now=lambda: NOW, sleep=lambda _: None, pick=lambda n: 0
    )


def history_source(**options: str) -> TgjuSource:
    return attrs.evolve(
        TgjuSource.history().configure(**options),
        now=lambda: NOW,
        sleep=lambda _: None,
        pick=lambda n: 0,
    )


def serve(handler: Callable[[httpx.Request], httpx.Response]) -> FetchContext:
    return FetchContext(http_transport=httpx.MockTransport(handler))


# The board


def test_the_board_gives_rial_per_unit_mid_quotes_at_each_items_tehran_time() -> None:
    quotes = parse_board(BOARD, now=NOW)

    assert quotes == [
        Quote(
            pair=Pair.of("USD", "IRR"),
            rate=Decimal(1064500),
            observed_at=datetime(2026, 10, 3, 11, 34, tzinfo=UTC),
            source="tgju",
            kind=QuoteKind.MID,
        ),
        Quote(
            pair=Pair.of("EUR", "IRR"),
            rate=Decimal(1243100),
            observed_at=datetime(2026, 10, 3, 11, 33, 12, tzinfo=UTC),
            source="tgju",
            kind=QuoteKind.MID,
        ),
        Quote(
            pair=Pair.of("JPY", "IRR"),
            rate=Decimal("7123"),
            observed_at=datetime(2026, 10, 3, 11, 34, tzinfo=UTC),
            source="tgju",
            kind=QuoteKind.MID,
        ),
    ]


def test_gold_coins_ounces_and_crypto_on_the_board_are_skipped() -> None:
    codes = {q.pair.base.code for q in parse_board(BOARD, now=NOW)}

    assert codes == {"USD", "EUR", "JPY"}


def test_persian_and_arabic_indic_digits_are_read() -> None:
    payload = board(
        price_dollar_rl=item("۱٬۰۶۴٬۵۰۰", "۲۰۲۶-۱۰-۰۳ ۱۵:۰۴:۰۰"),
        price_eur=item("١,٢٤٣,١٠٠"),
    )

    quotes = parse_board(payload, now=NOW)

    assert [q.rate for q in quotes] == [Decimal(1064500), Decimal(1243100)]
    assert quotes[0].observed_at == datetime(2026, 10, 3, 11, 34, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "plain"),
    [("۱٬۰۶۴٬۵۰۰", "1064500"), ("٤١٤٤٫٧٤", "4144.74"), ("<b>1,064,500</b>", "1064500")],
)
def test_digits_separators_and_tags_normalise(text: str, plain: str) -> None:
    assert normalise_digits(text) == plain


def test_a_summer_time_before_2022_uses_tehrans_old_daylight_offset() -> None:
    payload = board(price_dollar_rl=item("274,020", "2021-07-01 12:00:00"))

    assert parse_board(payload, now=NOW)[0].observed_at == datetime(2021, 7, 1, 7, 30, tzinfo=UTC)


def test_an_item_without_a_price_is_left_out() -> None:
    payload = board(price_dollar_rl=item("1,064,500"), price_eur=item(""), price_gbp=item("0"))

    assert [q.pair.base.code for q in parse_board(payload, now=NOW)] == ["USD"]


def test_items_limit_what_is_read() -> None:
    quotes = parse_board(BOARD, items=["price_eur"], now=NOW)

    assert [str(q.pair) for q in quotes] == ["EUR/IRR"]


BOARD_REFUSALS = [
    (b"", "expected JSON, got an empty body"),
    (b"<!DOCTYPE html><html><body>Just a moment...</body></html>", "an HTML page"),
    (BOARD[: len(BOARD) // 2], "malformed JSON"),
    (b'{"last": {}}', "no 'current' object"),
    (b"[]", "no 'current' object"),
    (board(geram18=item("97,551,000")), "none of the items"),
    (board(price_dollar_rl="1,064,500"), "expected an object, got str"),
    (board(price_dollar_rl={"ts": "2026-10-03 15:04:00"}), "has no price (p)"),
    (board(price_dollar_rl=item("1.064.500")), "is not a number"),
    (board(price_dollar_rl=item("-1,064,500")), "not a positive number"),
    (board(price_dollar_rl=item("NaN")), "not a positive number"),
    (board(price_dollar_rl=item("1e91,064,500")), "not a plausible price"),
    (board(price_dollar_rl=item("1,064,500", ts="")), "expected a Tehran time"),
    (board(price_dollar_rl=item("1,064,500", ts="1405-07-11 15:04")), "not YYYY-MM-DD HH:MM:SS"),
    (board(price_dollar_rl=item("1,064,500", ts="2026-10-05 15:04:00")), "is in the future"),
    (board(price_dollar_rl={"p": True, "ts": "2026-10-03 15:04:00"}), "expected a price"),
    (b'{"current": {"price_dollar_rl": {"p": 1.0645e6, "ts": 5}}}', "expected a Tehran time"),
]


@pytest.mark.parametrize(("payload", "reason"), BOARD_REFUSALS)
def test_a_broken_board_is_a_source_error(payload: bytes, reason: str) -> None:
    with pytest.raises(SourceError) as caught:
        parse_board(payload, now=NOW, label="ajax.json")

    assert caught.value.source == "tgju"
    assert caught.value.location and caught.value.location.startswith("ajax.json")
    assert reason in caught.value.reason


def test_a_board_price_given_as_a_json_number_keeps_its_digits() -> None:
    payload = b'{"current": {"price_eur": {"p": 1243100.5, "ts": "2026-10-03 15:04:00"}}}'

    assert parse_board(payload, now=NOW)[0].rate == Decimal("1243100.5")


# The history


def test_the_history_close_is_cell_3_at_the_end_of_the_tehran_day() -> None:
    quotes = parse_history(HISTORY, now=NOW)

    assert [(q.observed_at, q.rate) for q in quotes] == [
        (datetime(2026, 10, 3, 20, 29, 59, tzinfo=UTC), Decimal(1064500)),
        (datetime(2026, 10, 2, 20, 29, 59, tzinfo=UTC), Decimal(1060000)),
        (datetime(2026, 10, 1, 20, 29, 59, tzinfo=UTC), Decimal(1058200)),
    ]
    assert {str(q.pair) for q in quotes} == {"USD/IRR"}
    assert {(q.source, q.kind) for q in quotes} == {("tgju-history", QuoteKind.MID)}


def test_a_history_of_yen_is_per_one_yen() -> None:
    quotes = parse_history(history([row(date(2026, 10, 3), "712,300")]), item="price_jpy", now=NOW)

    assert [(str(q.pair), q.rate) for q in quotes] == [("JPY/IRR", Decimal("7123"))]


def test_a_history_page_reports_its_rows_oldest_day_and_total() -> None:
    page = read_history(HISTORY, now=NOW)

    assert (page.rows, page.oldest, page.total) == (3, date(2026, 10, 1), 3500)


HISTORY_REFUSALS = [
    (b"<html><body>403 Forbidden</body></html>", "an HTML page"),
    (b'{"draw": 0}', "no 'data' list"),
    (history([["1", "2", "3"]]), "at least 7 cells"),
    (history([[*row(date(2026, 10, 3), "1,064,500")[:6], "1405/07/11"]]), "Solar Hijri"),
    (history([[*row(date(2026, 10, 3), "1,064,500")[:6], "03.10.2026"]]), "is not a date"),
    (history([row(date(2026, 10, 3), "x")]), "'x' is not a number"),
    (history([row(date(2026, 10, 3), "-5")]), "not a positive number"),
    (
        history([row(date(2026, 10, 3), "1,064,500"), row(date(2026, 10, 3), "1,064,600")]),
        "2026-10-03 appears twice",
    ),
    (history([row(date(2026, 10, 6), "1,064,500")]), "2026-10-06 is in the future"),
]


@pytest.mark.parametrize(("payload", "reason"), HISTORY_REFUSALS)
def test_a_broken_history_page_is_a_source_error(payload: bytes, reason: str) -> None:
    with pytest.raises(SourceError) as caught:
        parse_history(payload, now=NOW, label="summary-table-data")

    assert caught.value.source == "tgju-history"
    assert caught.value.location and caught.value.location.startswith("summary-table-data")
    assert reason in caught.value.reason


# Fetching the board


def test_the_board_is_fetched_like_a_browser_from_a_mirror() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, content=BOARD)

    quotes = list(source().fetch(FetchWindow(), serve(handler)))

    assert len(quotes) == 3
    (request,) = requests
    assert str(request.url) == "https://call1.tgju.org/ajax.json"
    assert request.headers["referer"] == "https://www.tgju.org/"
    assert request.headers["user-agent"].startswith("Mozilla/5.0")


def test_a_failing_or_blocked_mirror_falls_back_to_the_next_in_rotation() -> None:
    visited: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        visited.append(request.url.host)
        if request.url.host == "call3.tgju.org":
            return httpx.Response(503)
        if request.url.host == "call4.tgju.org":
            return httpx.Response(200, content=b"<!DOCTYPE html><html>captcha</html>")
        return httpx.Response(200, content=BOARD)

    rotated = attrs.evolve(source(max_attempts="1"), pick=lambda n: 2)
    quotes = list(rotated.fetch(FetchWindow(), serve(handler)))

    assert visited == ["call3.tgju.org", "call4.tgju.org", "call5.tgju.org"]
    assert len(quotes) == 3


def test_every_mirror_failing_is_one_error_naming_each() -> None:
    with pytest.raises(SourceError) as caught:
        source(max_attempts="2").fetch(FetchWindow(), serve(lambda r: httpx.Response(404)))

    assert caught.value.source == "tgju"
    assert caught.value.location == "https://call1.tgju.org/ajax.json and 4 mirrors"
    assert caught.value.reason.startswith("every host failed")
    for number in range(1, 6):
        assert f"call{number}.tgju.org: HTTP 404" in caught.value.reason


def test_server_errors_are_retried_before_moving_on() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        return httpx.Response(500)

    with pytest.raises(SourceError, match="failed after 2 attempts: HTTP 500"):
        source(max_attempts="2", hosts="call1.tgju.org").fetch(FetchWindow(), serve(handler))

    assert calls == ["call1.tgju.org", "call1.tgju.org"]


def test_the_board_keeps_only_the_window_by_tehran_day() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=BOARD)

    assert list(source().fetch(FetchWindow(until=date(2026, 10, 2)), serve(handler))) == []
    assert len(list(source().fetch(FetchWindow(since=date(2026, 10, 3)), serve(handler)))) == 3


# Fetching the history


def test_the_history_asks_for_the_documented_parameters_and_reads_one_page_by_default() -> None:
    asked: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        return httpx.Response(200, content=HISTORY)

    quotes = list(history_source(items="price_dollar_rl").fetch(FetchWindow(), serve(handler)))

    assert [str(url) for url in asked] == [
        "https://api.tgju.org/v1/market/indicator/summary-table-data/price_dollar_rl"
        "?lang=fa&order_dir=desc&start=0&length=30&from=&to=&convert_to_ad=1"
    ]
    assert len(quotes) == 3


def test_a_history_backfill_pages_back_past_since_and_keeps_the_window() -> None:
    days = [date(2026, 10, 3) - timedelta(days=n) for n in range(90)]
    rows = [row(day, f"{1_000_000 + n * 100:,}") for n, day in enumerate(days)]
    starts: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        start, length = int(request.url.params["start"]), int(request.url.params["length"])
        starts.append(start)
        return httpx.Response(200, content=history(rows[start : start + length], total=90))

    window = FetchWindow(since=date(2026, 8, 20), until=date(2026, 9, 30))
    quotes = list(history_source(items="price_eur").fetch(window, serve(handler)))

    assert starts == [0, 30]
    assert len(quotes) == 42  # 20 August to 30 September
    assert {str(q.pair) for q in quotes} == {"EUR/IRR"}
    by_day = {q.observed_at.date(): q.rate for q in quotes}
    assert by_day[date(2026, 9, 30)] == Decimal(1_000_300)


def test_a_day_that_changes_between_pages_is_an_error() -> None:
    first = [row(date(2026, 10, 3) - timedelta(days=n), "1,064,500") for n in range(30)]
    second = [row(date(2026, 9, 4), "1,000,000")] + [
        row(date(2026, 9, 3) - timedelta(days=n), "1,000,000") for n in range(29)
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        page = first if request.url.params["start"] == "0" else second
        return httpx.Response(200, content=history(page))

    window = FetchWindow(since=date(2026, 8, 1))
    with pytest.raises(SourceError, match="reads 1064500 on one page and 1000000 on another"):
        history_source(items="price_dollar_rl").fetch(window, serve(handler))


def test_the_history_falls_back_to_the_mirror() -> None:
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        if request.url.host == "api.tgju.org":
            return httpx.Response(403)
        return httpx.Response(200, content=HISTORY)

    quotes = list(history_source(items="price_dollar_rl").fetch(FetchWindow(), serve(handler)))

    assert hosts == ["api.tgju.org", "api.accessban.com"]
    assert len(quotes) == 3


# Options and registration


def test_unit_toman_is_refused_because_only_rial_is_stored() -> None:
    with pytest.raises(SourceError) as caught:
        TgjuSource().configure(unit="toman")

    assert "always stored in IRR (rial)" in caught.value.reason
    assert TgjuSource().configure(unit="rial") == TgjuSource()


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"items": "price_dollar_rl,geram18"}, "not currency items"),
        ({"items": ","}, "not currency items"),
        ({"hosts": "https://call1.tgju.org/"}, "must be host names"),
        ({"page_size": "0"}, "too small"),
        ({"timeout": "x"}, "not a number"),
        ({"mode": "history"}, "unknown options ['mode']"),
    ],
)
def test_bad_options_are_refused(options: dict[str, str], reason: str) -> None:
    with pytest.raises(SourceError) as caught:
        TgjuSource().configure(**options)

    assert reason in caught.value.reason


def test_the_plugin_registers_the_board_and_the_history() -> None:
    registered: list[TgjuSource] = []
    fxcortex_register_sources(registered.append)

    board_source, history_of = registered
    assert (board_source.name, board_source.history_since) == ("tgju", None)
    assert (history_of.name, history_of.history_since) == ("tgju-history", date(2011, 11, 27))
    assert history_of.observation_interval == timedelta(days=1)
    assert history_of.currencies == ("EUR", "IRR", "USD")
    assert board_source.schedule.timezone == "Asia/Tehran"


# Fuzzing


def check(parse: Callable[[bytes], list[Quote]], payload: bytes, source_name: str) -> None:
    try:
        quotes = parse(payload)
    except SourceError as error:
        refused: SourceError | None = error
        quotes = []
    else:
        refused = None
    if refused is not None:
        assert refused.source == source_name
    assert all(q.rate > 0 and q.pair.quote.code == "IRR" for q in quotes)


@st.composite
def mutated(draw: st.DrawFn, payload: bytes) -> bytes:
    data = bytearray(payload)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        token = draw(
            st.sampled_from([b"", b"0", b"-", b'"', b",", b"<", b"}", b"\xdb\xb1", b"\xff", b"1e9"])
        )
        data[at : at + draw(st.integers(0, 3))] = token
    return bytes(data)


@given(st.one_of(st.binary(max_size=200), mutated(BOARD)))
def test_any_board_bytes_parse_or_raise_a_source_error(payload: bytes) -> None:
    check(lambda p: parse_board(p, now=NOW), payload, "tgju")


@given(st.one_of(st.binary(max_size=200), mutated(HISTORY)))
def test_any_history_bytes_parse_or_raise_a_source_error(payload: bytes) -> None:
    check(lambda p: parse_history(p, now=NOW), payload, "tgju-history")
