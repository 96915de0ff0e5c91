"""The options every HTTP source shares: typed, checked, and named in their errors."""

from __future__ import annotations

import pytest

from fxcortex.core import SourceError
from fxcortex.sources.options import HTTP_OPTIONS, http_options, reject_unknown


def test_http_options_are_typed_and_only_those_given_are_returned() -> None:
    assert http_options("s", {"timeout": "2.5", "max_attempts": " 3", "backoff": "0"}) == {
        "timeout": 2.5,
        "max_attempts": 3,
        "backoff": 0.0,
    }
    assert http_options("s", {"currencies": "USD"}) == {}


@pytest.mark.parametrize(
    ("option", "text", "message"),
    [
        ("timeout", "0", "timeout '0' is not a positive number of seconds"),
        ("timeout", "nan", "timeout 'nan' is not a positive number of seconds"),
        ("backoff", "-1", "backoff '-1' is not a positive number of seconds"),
        ("backoff", "soon", "backoff 'soon' is not a positive number of seconds"),
        ("max_attempts", "0", "max_attempts '0' is not a whole number of at least 1"),
        ("max_attempts", "2.5", "max_attempts '2.5' is not a whole number of at least 1"),
    ],
)
def test_a_bad_value_names_the_source_the_option_and_the_text(
    option: str, text: str, message: str
) -> None:
    with pytest.raises(SourceError, match=message) as caught:
        http_options("norges-bank", {option: text})
    assert "norges-bank" in str(caught.value)


def test_unknown_options_are_named_beside_the_known_ones() -> None:
    reject_unknown("boc", {"timeout": "1"}, HTTP_OPTIONS)
    with pytest.raises(SourceError, match=r"unknown options \['retries'\]; known: timeout, "):
        reject_unknown("boc", {"retries": "3", "timeout": "1"}, HTTP_OPTIONS)
