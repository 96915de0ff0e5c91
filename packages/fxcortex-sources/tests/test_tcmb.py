"""The TCMB source, on bulletins shaped like ``today.xml`` and the archive.

No response was recorded: the bulletins follow the shape in SOURCES.md, with rates consistent with
the ECB's fixes of mid-March 2026 (USD/TRY about 44.19).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.core import FetchContext, FetchWindow, Pair, Quote, QuoteKind, Source, SourceError
from fxcortex.sources.tcmb import TcmbSource, fxcortex_register_sources, parse

TODAY = date(2026, 11, 28)
BASE = "https://www.tcmb.gov.tr/kurlar"

# (code, unit, forex buying, forex selling)
Row = tuple[str, str, str, str]
MONDAY: list[Row] = [
    ("USD", "1", "44.1512", "44.2308"),
    ("EUR", "1", "50.6849", "50.7762"),
    ("GBP", "1", "58.6822", "58.9881"),
    ("JPY", "100", "27.7301", "27.9137"),
    ("XDR", "1", "60.1234", ""),
]
FRIDAY: list[Row] = [
    ("USD", "1", "44.0917", "44.1712"),
    ("EUR", "1", "50.4123", "50.5031"),
]


def bulletin(tarih: str, rows: Sequence[Row], *, english: str | None = None) -> bytes:
    """A bulletin shaped like ``today.xml``: ``Tarih`` DD.MM.YYYY, ``Date`` MM/DD/YYYY."""
    if english is None:
        day, month, year = tarih.split(".")
        english = f"{month}/{day}/{year}"
    currencies = "".join(
        f'\n <Currency CrossOrder="{order}" Kod="{code}" CurrencyCode="{code}">'
        f"<Unit>{unit}</Unit><Isim>ABD DOLARI</Isim><CurrencyName>US DOLLAR</CurrencyName>"
        f"<ForexBuying>{buying}</ForexBuying><ForexSelling>{selling}</ForexSelling>"
        f"<BanknoteBuying>{buying}</BanknoteBuying><BanknoteSelling>{selling}</BanknoteSelling>"
        "<CrossRateUSD/><CrossRateOther/></Currency>"
        for order, (code, unit, buying, selling) in enumerate(rows)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<?xml-stylesheet type="text/xsl" href="isokur.xsl"?>\n'
        f'<Tarih_Date Tarih="{tarih}" Date="{english}" Bulten_No="{tarih[-4:]}/52">'
        f"{currencies}\n</Tarih_Date>\n"
    ).encode()


GOOD = bulletin("16.03.2026", MONDAY)


def serving(handler: Callable[[httpx.Request], httpx.Response]) -> FetchContext:
    return FetchContext(http_transport=httpx.MockTransport(handler))


def xml_response(body: bytes) -> httpx.Response:
    return httpx.Response(200, headers={"Content-Type": "text/xml"}, content=body)


def archive(bulletins: dict[str, bytes]) -> tuple[FetchContext, list[str]]:
    """A TCMB that has these archive bulletins (by URL path) and answers 404 for other days."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        body = bulletins.get(request.url.path)
        if body is None:
            return httpx.Response(404, headers={"Content-Type": "text/html"}, content=b"<html/>")
        return xml_response(body)

    return serving(handler), asked


def refusal(payload: bytes, **options: object) -> SourceError:
    with pytest.raises(SourceError) as caught:
        parse(payload, label="kurlar.xml", today=TODAY, **options)  # type: ignore[arg-type]
    assert caught.value.source == "tcmb"
    return caught.value


def rates(quotes: list[Quote]) -> dict[tuple[str, str], Decimal]:
    return {(str(quote.pair), quote.kind.value): quote.rate for quote in quotes}


# The source


def test_the_source_declares_its_schedule_in_istanbul_and_its_history() -> None:
    source = TcmbSource()

    assert isinstance(source, Source)
    assert source.name == "tcmb"
    assert source.schedule.cron == "30 15 * * 1-5"
    assert source.schedule.timezone == "Europe/Istanbul"
    assert source.history_since == date(1996, 5, 2)
    assert source.observation_interval == timedelta(days=1)
    assert source.currencies == ()  # the list has varied over the years


def test_the_plugin_registers_the_tcmb_source() -> None:
    registered: list[object] = []

    fxcortex_register_sources(registered.append)

    assert registered == [TcmbSource()]


def test_the_urls_are_today_xml_and_the_yyyymm_ddmmyyyy_archive() -> None:
    source = TcmbSource()

    assert source.today_url() == f"{BASE}/today.xml"
    assert source.archive_url(date(2025, 11, 20)) == f"{BASE}/202511/20112025.xml"
    assert source.archive_url(date(2026, 3, 2)) == f"{BASE}/202603/02032026.xml"


def test_a_window_asks_for_each_day_up_to_today_from_the_first_bulletin() -> None:
    source = TcmbSource()
    today = date(2026, 3, 17)

    assert source.days(FetchWindow(since=date(2026, 3, 15)), today=today) == [
        date(2026, 3, 15),
        date(2026, 3, 16),
        date(2026, 3, 17),
    ]
    assert source.days(FetchWindow(since=date(2026, 3, 16), until=date(2026, 4, 1)), today) == [
        date(2026, 3, 16),
        date(2026, 3, 17),
    ]
    assert source.days(FetchWindow(since=date(1996, 1, 1), until=date(1996, 5, 3)), today) == [
        date(1996, 5, 2),
        date(1996, 5, 3),
    ]


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"banknotes": "yes"}, "unknown options ['banknotes']"),
        ({"interval": "fast"}, "interval 'fast' is not a positive number of seconds"),
        ({"max_attempts": "0"}, "max_attempts '0' is not a whole number of at least 1"),
    ],
)
def test_configure_refuses_unknown_options_and_bad_values(
    options: dict[str, str], reason: str
) -> None:
    with pytest.raises(SourceError) as caught:
        TcmbSource().configure(**options)

    assert caught.value.source == "tcmb"
    assert reason in caught.value.reason


def test_configure_sets_the_http_options_on_a_copy() -> None:
    source = TcmbSource().configure(timeout="5", max_attempts="2", backoff="0", interval="0")

    assert (source.timeout, source.max_attempts, source.backoff, source.interval) == (5, 2, 0, 0)
    assert TcmbSource().interval == 0.25


# The bulletin


def test_an_open_window_reads_today_xml() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return xml_response(GOOD)

    quotes = list(TcmbSource().fetch(FetchWindow(), serving(handler)))

    assert asked == [f"{BASE}/today.xml"]
    assert len(quotes) == 4 * 2 + 1  # XDR has no selling rate


def test_forex_buying_is_buy_and_forex_selling_is_sell_in_lira() -> None:
    quotes = parse(GOOD, today=TODAY)

    assert {quote.pair.quote.code for quote in quotes} == {"TRY"}
    assert {quote.kind for quote in quotes} == {QuoteKind.BUY, QuoteKind.SELL}
    by_key = rates(quotes)
    assert by_key[("USD/TRY", "buy")] == Decimal("44.1512")
    assert by_key[("USD/TRY", "sell")] == Decimal("44.2308")
    assert by_key[("EUR/TRY", "sell")] == Decimal("50.7762")
    assert ("XDR/TRY", "sell") not in by_key and by_key[("XDR/TRY", "buy")] == Decimal("60.1234")


def test_a_unit_of_100_gives_the_rate_per_one_yen() -> None:
    by_key = rates(parse(GOOD, today=TODAY))

    assert by_key[("JPY/TRY", "buy")] == Decimal("0.277301")
    assert by_key[("JPY/TRY", "sell")] == Decimal("0.279137")


def test_the_bulletin_is_announced_at_1530_istanbul() -> None:
    quotes = parse(GOOD, today=TODAY)

    # Türkiye is UTC+3 all year
    assert {quote.observed_at for quote in quotes} == {datetime(2026, 3, 16, 12, 30, tzinfo=UTC)}


def test_a_backfill_reads_each_day_and_a_weekend_404_adds_nothing() -> None:
    context, asked = archive(
        {
            "/kurlar/202603/13032026.xml": bulletin("13.03.2026", FRIDAY),
            "/kurlar/202603/16032026.xml": GOOD,
        }
    )
    window = FetchWindow(since=date(2026, 3, 13), until=date(2026, 3, 16))

    quotes = list(TcmbSource().configure(interval="0").fetch(window, context))

    assert asked == [
        "/kurlar/202603/13032026.xml",
        "/kurlar/202603/14032026.xml",
        "/kurlar/202603/15032026.xml",
        "/kurlar/202603/16032026.xml",
    ]
    assert len(quotes) == 2 * 2 + 9
    friday = [quote for quote in quotes if quote.observed_at.day == 13]
    assert rates(friday) == {
        ("USD/TRY", "buy"): Decimal("44.0917"),
        ("USD/TRY", "sell"): Decimal("44.1712"),
        ("EUR/TRY", "buy"): Decimal("50.4123"),
        ("EUR/TRY", "sell"): Decimal("50.5031"),
    }


def test_a_window_of_only_a_weekend_yields_nothing() -> None:
    context, asked = archive({})
    weekend = FetchWindow(since=date(2026, 3, 14), until=date(2026, 3, 15))

    assert list(TcmbSource().configure(interval="0").fetch(weekend, context)) == []
    assert len(asked) == 2


def test_an_archive_bulletin_of_another_day_is_refused() -> None:
    context, _ = archive({"/kurlar/202603/16032026.xml": bulletin("13.03.2026", FRIDAY)})
    day = FetchWindow(since=date(2026, 3, 16), until=date(2026, 3, 16))

    with pytest.raises(SourceError) as caught:
        list(TcmbSource().fetch(day, context))

    assert caught.value.reason == "the bulletin of 2026-03-13 at the URL of 2026-03-16"
    assert caught.value.location == f"{BASE}/202603/16032026.xml Tarih_Date"


def test_one_malformed_bulletin_fails_the_whole_backfill() -> None:
    context, _ = archive(
        {
            "/kurlar/202603/13032026.xml": bulletin("13.03.2026", FRIDAY),
            "/kurlar/202603/16032026.xml": GOOD[:-40],
        }
    )
    window = FetchWindow(since=date(2026, 3, 13), until=date(2026, 3, 16))

    with pytest.raises(SourceError) as caught:
        list(TcmbSource().configure(interval="0").fetch(window, context))

    assert "malformed XML" in caught.value.reason
    assert caught.value.location == f"{BASE}/202603/16032026.xml"


def test_the_window_filters_todays_bulletin_by_its_date() -> None:
    earlier = FetchWindow(until=date(2026, 3, 13))

    quotes = list(TcmbSource().fetch(earlier, serving(lambda r: xml_response(GOOD))))

    assert quotes == []


def test_bulletins_before_2005_are_in_old_lira() -> None:
    payload = bulletin("31.12.2004", [("USD", "1", "1342100", "1348568")])

    quotes = parse(payload, today=TODAY)

    assert {quote.pair for quote in quotes} == {Pair.of("USD", "TRL")}
    assert rates(quotes)[("USD/TRL", "buy")] == Decimal("1342100")
    assert parse(bulletin("03.01.2005", MONDAY), today=TODAY)[0].pair.quote.code == "TRY"


def test_a_bulletin_without_the_english_date_is_read() -> None:
    payload = GOOD.replace(b' Date="03/16/2026"', b"")

    assert len(parse(payload, today=TODAY)) == 9


def test_an_unchanged_bulletin_yields_nothing() -> None:
    assert list(TcmbSource().fetch(FetchWindow(), serving(lambda r: httpx.Response(304)))) == []


# Bad payloads


def test_an_html_page_served_as_data_is_refused() -> None:
    error = refusal(b"<!DOCTYPE html><html><body>Sayfa bulunamadi</body></html>")

    assert "HTML page" in error.reason
    assert error.location == "kurlar.xml"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (GOOD[: len(GOOD) // 2], "malformed XML"),
        (b"", "malformed XML"),
        (GOOD.decode().encode("utf-16")[:-2], "malformed XML"),
        (GOOD.replace(b"ABD DOLARI", "ABD DOLARİ".encode("iso-8859-9")), "malformed XML"),
        (
            b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x "y">]><Tarih_Date Tarih="&x;"/>',
            "DOCTYPE or entity",
        ),
        (b'<?xml version="1.0"?><Kurlar Tarih="16.03.2026"/>', "the root is <Kurlar>"),
    ],
)
def test_a_payload_that_is_not_a_bulletin_is_refused(payload: bytes, reason: str) -> None:
    error = refusal(payload)

    assert reason in error.reason
    assert error.location == "kurlar.xml"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (bulletin("2026-03-16", MONDAY, english="03/16/2026"), "Tarih '2026-03-16' is not DD."),
        (bulletin("30.02.2026", MONDAY, english="02/30/2026"), "Tarih '30.02.2026' is not a day"),
        (
            bulletin("16.03.2026", MONDAY, english="16/03/2026"),
            "Date '16/03/2026' disagrees with Tarih '16.03.2026'",
        ),
        (bulletin("16.12.2026", MONDAY), "2026-12-16 is in the future"),
        (GOOD.replace(b' Tarih="16.03.2026"', b""), "Tarih None is not DD.MM.YYYY"),
    ],
)
def test_a_bad_bulletin_date_is_refused(payload: bytes, reason: str) -> None:
    error = refusal(payload)

    assert reason in error.reason
    assert error.location == "kurlar.xml Tarih_Date"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (("XYZ", "1", "1.0", "1.1"), "unknown currency code 'XYZ'"),
        (("TRY", "1", "1.0", "1.0"), "TRY quoted in lira"),
        (("CHF", "0", "55.1", "55.4"), "Unit '0' is not a positive whole number"),
        (("CHF", "1.5", "55.1", "55.4"), "Unit '1.5' is not a positive whole number"),
        (("CHF", "", "55.1", "55.4"), "Unit '' is not a positive whole number"),
        (("CHF", "1", "55,1", "55.4"), "ForexBuying '55,1' is not a number"),
        (("CHF", "1", "55.1", "abc"), "ForexSelling 'abc' is not a number"),
        (("CHF", "1", "-55.1", "55.4"), "ForexBuying '-55.1' is not a positive number"),
        (("CHF", "1", "0.0000", "55.4"), "ForexBuying '0.0000' is not a positive number"),
        (("CHF", "1", "1e2", "55.4"), "ForexBuying '1e2' is not a number"),
        (("CHF", "1", "55.9", "55.4"), "buying rate 55.9 is above selling rate 55.4"),
        (("USD", "1", "44.1", "44.2"), "USD appears twice"),
    ],
)
def test_a_bad_currency_is_refused_naming_it(row: Row, reason: str) -> None:
    error = refusal(bulletin("16.03.2026", [*MONDAY, row]))

    assert reason in error.reason
    assert error.location == f"kurlar.xml Currency Kod={row[0]}"


def test_kod_and_currency_code_must_agree() -> None:
    payload = GOOD.replace(b'Kod="GBP" CurrencyCode="GBP"', b'Kod="GBP" CurrencyCode="GIP"')

    error = refusal(payload)

    assert error.reason == "CurrencyCode 'GIP' disagrees with Kod 'GBP'"
    assert error.location == "kurlar.xml Currency Kod=GBP"


def test_an_element_that_is_not_a_currency_is_refused() -> None:
    payload = GOOD.replace(b"</Tarih_Date>", b'<Gold Kod="XAU"/></Tarih_Date>')

    assert refusal(payload).reason == "unexpected element <Gold>"


# HTTP failures


def test_a_404_for_today_xml_is_a_source_error() -> None:
    with pytest.raises(SourceError) as caught:
        list(TcmbSource().fetch(FetchWindow(), serving(lambda r: httpx.Response(404))))

    assert caught.value.source == "tcmb"
    assert "HTTP 404" in caught.value.reason
    assert caught.value.location == f"{BASE}/today.xml"


def test_server_errors_on_an_archive_day_fail_after_the_configured_attempts() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500)

    source = TcmbSource().configure(max_attempts="3", backoff="0", interval="0")
    day = FetchWindow(since=date(2026, 3, 16), until=date(2026, 3, 16))

    with pytest.raises(SourceError, match="after 3 attempts: HTTP 500") as caught:
        list(source.fetch(day, serving(handler)))
    assert caught.value.location == f"{BASE}/202603/16032026.xml"
    assert len(calls) == 3


def test_an_html_page_served_with_200_for_an_archive_day_is_refused() -> None:
    context, _ = archive({"/kurlar/202603/16032026.xml": b"<html><body>Hata</body></html>"})
    day = FetchWindow(since=date(2026, 3, 16), until=date(2026, 3, 16))

    with pytest.raises(SourceError, match="HTML page"):
        list(TcmbSource().fetch(day, context))


# Anything else is a SourceError, never another exception


def check_outcome(payload: bytes) -> None:
    """Parsing either gives valid buy/sell quotes in lira or raises a `SourceError`."""
    try:
        quotes = parse(payload, label="fuzzed", today=TODAY)
    except SourceError as error:
        refused: SourceError | None = error
        quotes = []
    else:
        refused = None
    if refused is not None:
        assert refused.source == "tcmb"
        assert refused.reason
        assert refused.location and refused.location.startswith("fuzzed")
    for quote in quotes:
        assert quote.pair.quote.code in ("TRY", "TRL")
        assert quote.pair.base.code not in ("TRY", "TRL")
        assert quote.rate.is_finite() and quote.rate > 0
        assert quote.kind in (QuoteKind.BUY, QuoteKind.SELL)
        assert quote.observed_at.tzinfo is UTC
        assert quote.observed_at.date() <= TODAY + timedelta(days=1)
    assert len({quote.key for quote in quotes}) == len(quotes)


def mutate(payload: bytes, changes: list[tuple[str, int, bytes]]) -> bytes:
    data = bytearray(payload)
    for kind, position, chunk in changes:
        at = position % (len(data) + 1)
        if kind == "insert":
            data[at:at] = chunk
        elif kind == "delete":
            del data[at : at + len(chunk)]
        else:
            data[at : at + len(chunk)] = chunk
    return bytes(data)


mutations = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "replace"]),
        st.integers(min_value=0, max_value=2_000),
        st.binary(min_size=1, max_size=6)
        | st.sampled_from([b"<", b">", b".", b"0", b"-", b"</Currency>", b'Kod="X"', b"\xff"]),
    ),
    min_size=1,
    max_size=4,
)


@given(
    st.one_of(
        st.binary(max_size=400),
        st.binary(max_size=300).map(lambda tail: b'<Tarih_Date Tarih="16.03.2026">' + tail),
    )
)
def test_arbitrary_bytes_parse_to_valid_quotes_or_a_source_error(payload: bytes) -> None:
    check_outcome(payload)


@given(mutations)
def test_a_mutated_bulletin_parses_to_valid_quotes_or_a_source_error(
    changes: list[tuple[str, int, bytes]],
) -> None:
    check_outcome(mutate(GOOD, changes))


@given(
    st.sampled_from(["USD", "JPY", "TRY", "ABC", ""]),
    st.text(alphabet="0123456789.-", max_size=5),
    st.text(alphabet="0123456789.-e,", max_size=9),
    st.text(alphabet="0123456789.-e,", max_size=9),
)
def test_any_currency_values_parse_or_are_refused(
    code: str, unit: str, buying: str, selling: str
) -> None:
    check_outcome(bulletin("16.03.2026", [(code, unit, buying, selling)]))
