"""itportal.reversing.reverse_number gives reverse()'s URL."""

import pytest
from django.urls import reverse, set_script_prefix

from itportal.reversing import reverse_number


@pytest.mark.parametrize("number", [0, 1, 42, 7350918264, 10**17])
@pytest.mark.parametrize("prefix", ["/", "/portal/"])
def test_equals_reverse(number, prefix):
    set_script_prefix(prefix)
    try:
        assert reverse_number("requests:detail", "pk", number) == reverse(
            "requests:detail", kwargs={"pk": number}
        )
    finally:
        set_script_prefix("/")


def test_other_values_go_to_reverse():
    # Not an int: reverse() itself answers (here: no URL matches).
    with pytest.raises(Exception):  # noqa: B017 - whatever reverse() raises
        reverse_number("requests:detail", "pk", "x/y")
