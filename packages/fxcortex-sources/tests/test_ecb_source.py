"""The ECB source: its options, where it reads from, and how it is registered."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from fxcortex.core import FetchWindow, Registry, Source, SourceError
from fxcortex.sources.ecb import BUNDLED, HISTORY_URL, EcbSource, parse

WINDOW = FetchWindow()


def test_the_default_source_reads_the_live_history_of_the_ecb() -> None:
    source = EcbSource()

    assert isinstance(source, Source)
    assert source.name == "ecb"
    assert source.location == HISTORY_URL
    assert source.observation_interval == timedelta(days=1)
    assert source.schedule.timezone == "Europe/Berlin"


def test_configure_sets_location_and_timeout_on_a_copy() -> None:
    original = EcbSource()

    configured = original.configure(location="/data/eurofxref-hist.zip", timeout="12.5")

    assert configured.location == "/data/eurofxref-hist.zip"
    assert configured.timeout == 12.5
    assert original.location == HISTORY_URL
    assert original.timeout == 60.0


def test_configure_with_no_options_changes_nothing() -> None:
    assert EcbSource().configure() == EcbSource()


def test_configure_refuses_unknown_options_naming_them_and_the_known_ones() -> None:
    with pytest.raises(SourceError) as caught:
        EcbSource().configure(location=BUNDLED, url="https://example.org", retries="3")

    error = caught.value
    assert error.source == "ecb"
    assert "['retries', 'url']" in error.reason
    assert "location, timeout" in error.reason


def test_configure_refuses_a_timeout_that_is_not_a_number() -> None:
    with pytest.raises(SourceError, match="timeout 'soon' is not a positive number of seconds"):
        EcbSource().configure(timeout="soon")


@pytest.mark.parametrize("timeout", ["-1", "nan"])
def test_a_timeout_that_is_not_a_positive_duration_fails_as_a_source_error(
    timeout: str, http_server: Any
) -> None:
    url = http_server.serve("/eurofxref-daily.xml", b"<never-read/>")

    with pytest.raises(SourceError) as caught:
        list(EcbSource().configure(location=url, timeout=timeout).fetch(WINDOW))

    assert caught.value.source == "ecb"


# Local files


def test_a_local_file_is_read_like_the_payload_it_holds(tmp_path: Path, payloads: Any) -> None:
    content = payloads.history_csv(
        ["USD", "JPY"], [("2024-01-03", ["1.0919", "155.79"]), ("2024-01-02", ["1.0956", "159.17"])]
    )
    path = tmp_path / "eurofxref-hist.zip"
    path.write_bytes(payloads.zipped({"eurofxref-hist.csv": content}))

    quotes = list(
        EcbSource().configure(location=str(path)).fetch(FetchWindow(since=date(2024, 1, 3)))
    )

    assert quotes == parse(content, window=FetchWindow(since=date(2024, 1, 3)))
    assert len(quotes) == 2


def test_an_error_in_a_local_file_names_the_file_member_and_line(
    tmp_path: Path, payloads: Any
) -> None:
    content = payloads.history_csv(["USD"], [("2024-01-03", ["1.09"]), ("2024-01-02", ["x"])])
    path = tmp_path / "eurofxref-hist.zip"
    path.write_bytes(payloads.zipped({"eurofxref-hist.csv": content}))

    with pytest.raises(SourceError) as caught:
        list(EcbSource().configure(location=str(path)).fetch(WINDOW))

    assert caught.value.location == "eurofxref-hist.zip:eurofxref-hist.csv line 3 column USD"


def test_a_missing_local_file_is_a_source_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "eurofxref-hist.zip"

    with pytest.raises(SourceError) as caught:
        list(EcbSource().configure(location=str(missing)).fetch(WINDOW))

    assert caught.value.source == "ecb"
    assert str(missing) in str(caught.value)
    assert "No such file" in caught.value.reason


def test_a_folder_given_as_the_location_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=str(tmp_path)):
        list(EcbSource().configure(location=str(tmp_path)).fetch(WINDOW))


def test_the_bundled_location_reads_offline() -> None:
    quotes = list(
        EcbSource()
        .configure(location=BUNDLED)
        .fetch(FetchWindow(since=date(2026, 10, 30), until=date(2026, 10, 30)))
    )

    assert len(quotes) == 29


# URLs (a local server: no internet here)


DAILY_XML = (
    b"<gesmes:Envelope xmlns:gesmes='http://www.gesmes.org/xml/2002-08-01'"
    b" xmlns='http://www.ecb.int/vocabulary/2002-08-01/eurofxref'><Cube><Cube time='2026-09-04'>"
    b"<Cube currency='USD' rate='1.1622'/><Cube currency='JPY' rate='181.59'/>"
    b"</Cube></Cube></gesmes:Envelope>"
)


def test_a_url_is_downloaded_and_parsed(http_server: Any) -> None:
    url = http_server.serve(
        "/stats/eurofxref/eurofxref-daily.xml", DAILY_XML, content_type="text/xml"
    )

    quotes = list(EcbSource().configure(location=url).fetch(WINDOW))

    assert quotes == parse(DAILY_XML)
    assert http_server.requests[0]["user-agent"].startswith("fxcortex/")


def test_a_url_that_answers_an_error_status_is_a_source_error(http_server: Any) -> None:
    url = http_server.base_url + "/stats/eurofxref/missing.zip"

    with pytest.raises(SourceError) as caught:
        list(EcbSource().configure(location=url).fetch(WINDOW))

    assert caught.value.source == "ecb"
    assert "404" in str(caught.value)


def test_an_html_page_served_with_status_200_is_a_source_error_naming_the_file(
    http_server: Any,
) -> None:
    page = b"<!DOCTYPE html><html><body><h1>We are updating our site</h1></body></html>"
    url = http_server.serve("/stats/eurofxref/eurofxref-hist.zip", page, content_type="text/html")

    with pytest.raises(SourceError) as caught:
        list(EcbSource().configure(location=url).fetch(WINDOW))

    assert caught.value.location == "eurofxref-hist.zip"


# Registration


def test_the_ecb_plugin_registers_its_source(
    fxcortex_registry: Callable[..., Registry],
) -> None:
    registry = fxcortex_registry()

    source = registry.source("ecb")
    assert isinstance(source, EcbSource)
    assert source.location == HISTORY_URL
    assert registry.owners[("source", "ecb")] == "ecb"
