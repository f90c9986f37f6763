"""Named choices of governance: recertification scopes, reviewer rules, outcome strategies."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class CampaignScope(models.TextChoices):
    ALL = "all", _("All lasting access")
    ITEM = "item", _("One service")
    DEPARTMENT = "department", _("One department")
    RISK = "risk", _("The riskiest access")


class ReviewerRule(models.TextChoices):
    """Who reviews in a stage. Where the rule finds nobody who may (inactive, or the holder
    themselves: no self-review), IT administration decides (the fallback)."""

    LINE_MANAGER = "line_manager", _("Line manager")
    ITEM_OWNER = "item_owner", _("Service owner group")
    COST_CENTRE_OWNER = "cost_centre_owner", _("Cost-centre owner")
    IT_ADMIN = "it_admin", _("IT administration")


# Why a task went to its reviewer: the rule, or the fallback/escalation that replaced it.
class TaskRoute(models.TextChoices):
    LINE_MANAGER = "line_manager", _("Line manager")
    ITEM_OWNER = "item_owner", _("Service owner group")
    COST_CENTRE_OWNER = "cost_centre_owner", _("Cost-centre owner")
    IT_ADMIN = "it_admin", _("IT administration")
    FALLBACK = "fallback", _("IT administration (fallback)")
    ESCALATED = "escalated", _("Escalated to the reviewer's manager")


class OutcomeStrategy(models.TextChoices):
    """How the decisions of several reviewers of one stage make its outcome (midPoint's
    names in brackets)."""

    ONE_ACCEPT_ACCEPTS = "one_accept_accepts", _("One keep keeps (oneAcceptAccepts)")
    ALL_MUST_ACCEPT = "all_must_accept", _("All must keep (allMustAccept)")
    ONE_REVOKE_REVOKES = "one_revoke_revokes", _("One removal removes (oneDenyDenies)")
    ACCEPTED_UNLESS_REVOKED = (
        "accepted_unless_revoked",
        _("Kept unless removed (acceptedIfNotDenied)"),
    )


class UndecidedDefault(models.TextChoices):
    """What happens to access nobody decided on when a stage closes."""

    REMOVE = "remove", _("Remove it")
    REPORT = "report", _("Keep it and report it as not confirmed")


class TaskDecision(models.TextChoices):
    PENDING = "pending", _("Not yet decided")
    ACCEPT = "accept", _("Keep")
    REVOKE = "revoke", _("Remove")
    REDUCE = "reduce", _("Keep for a shorter time")
