import math

import pytest

from lrpredict.errors import LrpredictError
from lrpredict.units import format_size, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7B", 7e9),
        ("2T", 2e12),
        ("1.3e9", 1.3e9),
        ("4M", 4e6),
        ("128K", 128e3),
        ("4Mi", 4 * 2**20),
        ("12", 12.0),
        (" 3g ", 3e9),
    ],
)
def test_parse_size_accepts_suffixes(text: str, expected: float) -> None:
    assert math.isclose(parse_size(text), expected)


@pytest.mark.parametrize("text", ["7X", "", "-1B", "0", "nan", "inf", "B", "1.2.3M", "1e999"])
def test_parse_size_rejects_malformed_with_field_name(text: str) -> None:
    with pytest.raises(LrpredictError) as info:
        parse_size(text, "params")
    message = str(info.value)
    assert message.startswith("params=") and "\n" not in message and "suffix" in message


def test_format_size_is_short() -> None:
    assert format_size(1.3e9) == "1.3B"
    assert format_size(5e11) == "500B"
    assert format_size(512) == "512"
    assert format_size(999e12) == "999T" and format_size(1e20) == "1e+20"  # was "1e+08T"


@pytest.mark.parametrize("value", [True, False, None, [1], {"n": 1}, b"7B", "7" * 100, "nan", "inf", "-1", "1e-400"])
def test_parse_size_refuses_non_sizes_with_one_line(value) -> None:
    # issue 15: params=True was read as 1.0 (bool is an int in Python)
    with pytest.raises(LrpredictError) as caught:
        parse_size(value, "params")
    assert caught.value.field == "params" and "\n" not in str(caught.value)


def test_error_without_a_value_says_missing_not_none() -> None:
    from lrpredict.errors import LrpredictError

    assert str(LrpredictError("--seq-len", None, "a positive integer")) == "--seq-len is missing: a positive integer"
    assert str(LrpredictError("--seq-len", 0, "a positive integer")) == "--seq-len=0 is not valid: a positive integer"
