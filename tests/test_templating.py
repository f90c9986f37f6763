"""Placeholders of provisioning actions: fixed names, escaping inside DNs, clear errors."""

import pytest

from provisioning.templating import parse_attribute_lines, render, render_dn

CONTEXT = {
    "beneficiary.uid": "m10042",
    "beneficiary.last_name": "Schmidt",
    "answers.share": "cn=fs-hauptamt,ou=fileshares,ou=groups,dc=musterstadt,dc=example",
    "answers.evil": "x,ou=admins)(uid=*",
}


def test_render_substitutes_known_names():
    assert render("{{ beneficiary.uid }}@musterstadt.example", CONTEXT) == (
        "m10042@musterstadt.example"
    )


def test_unknown_placeholder_is_an_error_not_empty():
    with pytest.raises(ValueError, match="Unknown placeholder"):
        render("{{ beneficiary.password }}", CONTEXT)


def test_placeholder_alone_is_a_whole_dn():
    assert render_dn("{{ answers.share }}", CONTEXT) == CONTEXT["answers.share"]


def test_value_inside_a_dn_is_escaped():
    dn = render_dn("cn={{ answers.evil }},ou=groups,dc=musterstadt,dc=example", CONTEXT)
    assert dn.startswith("cn=x\\,ou\\=admins)(uid\\=*,")
    assert dn.endswith(",ou=groups,dc=musterstadt,dc=example")


def test_a_whole_dn_answer_that_is_no_dn_is_refused():
    with pytest.raises(Exception):  # noqa: B017 - ldap3 raises its own DN error type
        render_dn("{{ answers.evil }}", {"answers.evil": "not a dn"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        (
            "mail = {{ beneficiary.uid }}@x\n# comment\n\ntitle=Clerk",
            {"mail": "{{ beneficiary.uid }}@x", "title": "Clerk"},
        ),
    ],
)
def test_attribute_lines(text, expected):
    assert parse_attribute_lines(text) == expected


@pytest.mark.parametrize(
    "text",
    ["no equals sign", "bad name! = x", "= value", "userPassword = geheim", "unicodePwd = x"],
)
def test_bad_attribute_lines_name_the_line(text):
    with pytest.raises(ValueError, match="Line 1"):
        parse_attribute_lines(text)
