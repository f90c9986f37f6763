"""Named choices of the catalogue and the organisation."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class FulfilmentKind(models.TextChoices):
    MANUAL = "manual", _("Manual")
    AUTOMATED = "automated", _("Automated")


class Audience(models.TextChoices):
    EVERYONE = "everyone", _("Everyone")
    RESTRICTED = "restricted", _("Listed departments and groups")


class FieldType(models.TextChoices):
    TEXT = "text", _("Text")
    LONG_TEXT = "long_text", _("Long text")
    NUMBER = "number", _("Number")
    DATE = "date", _("Date")
    CHOICE = "choice", _("Choice")
    MULTIPLE_CHOICE = "multiple_choice", _("Multiple choice")
    YES_NO = "yes_no", _("Yes/no")
    PERSON = "person", _("Person")
    DIRECTORY_GROUP = "directory_group", _("Directory group")
    # A statement the orderer must accept ("I know the service agreement"): a checkbox that
    # has to be ticked, never a yes/no that can be answered "no".
    ACKNOWLEDGEMENT = "acknowledgement", _("Acknowledgement (must be accepted)")


class ApproverKind(models.TextChoices):
    LINE_MANAGER = "line_manager", _("Line manager of the beneficiary")
    COST_CENTRE_OWNER = "cost_centre_owner", _("Owner of the cost centre")
    GROUP = "group", _("Member of a group")
    PERSON_FIELD = "person_field", _("Person chosen in a form field")
    GROUP_OWNER = "group_owner", _("Owner of the directory group chosen in a form field")


class ConditionEffect(models.TextChoices):
    """What a field's condition decides."""

    SHOW = "show", _("shown only when")
    REQUIRE = "require", _("required only when")


class ConditionOperator(models.TextChoices):
    EQUALS = "equals", _("equals")
    ONE_OF = "one_of", _("is one of")
    IS_SET = "is_set", _("is answered")


class RuleKind(models.TextChoices):
    """Rules across several answers of one order form."""

    AFTER = "after", _("date A is after date B")
    NOT_GREATER = "not_greater", _("A is not greater than B")
    AT_LEAST_ONE = "at_least_one", _("at least one of the fields is answered")
