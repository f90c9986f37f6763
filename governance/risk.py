"""How risky a held access is: the order of a "by risk" recertification.

A score is a sum of signals, each a database expression over ``Entitlement`` rows, so the
riskiest N are picked in one query. Other apps add signals with ``register`` (in their
``AppConfig.ready``), e.g. reclaim candidates (access not used for long); the built-in ones:

- the service is named in an active segregation-of-duties rule (``SOD_WEIGHT``);
- the service changes the directory (automated fulfilment: groups, accounts);
- the access has no end date;
- the service's monthly price (what forgotten access costs).

The assist app registers its reclaim signs (``assist.reclaim``: holder no longer active,
moved department, not signed in for long, few peers hold it) in ``AssistConfig.ready``;
governance does not import it, and each sign counts once.
"""

from __future__ import annotations

from django.db.models import Case, Exists, F, IntegerField, OuterRef, QuerySet, Value, When
from django.db.models.functions import Cast, Coalesce

SOD_WEIGHT = 100
DIRECTORY_WEIGHT = 30
OPEN_ENDED_WEIGHT = 10

_signals: dict[str, object] = {}


def register(name: str, expression) -> None:
    """Add a signal: an integer expression over Entitlement rows (higher is riskier)."""
    _signals[name] = expression


def _builtin() -> dict[str, object]:
    from catalogue.choices import FulfilmentKind
    from governance.models import SodRuleMember

    # Named as a member of either side (rules over sets and groups: governance.sod).
    in_rule = SodRuleMember.objects.filter(item=OuterRef("item"), rule__is_active=True)
    return {
        "sod": Case(When(Exists(in_rule), then=Value(SOD_WEIGHT)), default=Value(0)),
        "directory": Case(
            When(item__fulfilment_kind=FulfilmentKind.AUTOMATED, then=Value(DIRECTORY_WEIGHT)),
            default=Value(0),
        ),
        "open_ended": Case(
            When(expires_on__isnull=True, then=Value(OPEN_ENDED_WEIGHT)), default=Value(0)
        ),
        "price": Cast(Coalesce(F("item__price_monthly"), Value(0)), IntegerField()),
    }


def with_risk(queryset: QuerySet) -> QuerySet:
    """``queryset`` of entitlements annotated with ``risk_score``."""
    score = None
    for expression in {**_builtin(), **_signals}.values():
        score = expression if score is None else score + expression
    return queryset.annotate(risk_score=Cast(score, IntegerField()))


def riskiest(queryset: QuerySet, limit: int) -> QuerySet:
    return with_risk(queryset).order_by("-risk_score", "id")[:limit]
