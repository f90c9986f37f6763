"""Kinds of mail: which templates render them and where their context comes from.

Apps that send mail register their kinds in ``AppConfig.ready``; notifications never
imports them, so the dependency points one way (requests_app → notifications).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.functional import Promise


@dataclass(frozen=True)
class MailKind:
    """``templates`` is a folder with ``subject.txt``, ``body.txt`` and ``body.html``;
    ``context(params, recipient)`` returns their context, or None when what the mail is
    about no longer exists (the mail then fails without an attempt)."""

    name: str
    label: str | Promise
    templates: str
    context: Callable[[dict, object], dict | None]


_kinds: dict[str, MailKind] = {}


def register(kind: MailKind) -> None:
    _kinds[kind.name] = kind


def get(name: str) -> MailKind | None:
    return _kinds.get(name)


def choices() -> list[tuple[str, str | Promise]]:
    return sorted(((k.name, k.label) for k in _kinds.values()), key=lambda c: str(c[1]))
