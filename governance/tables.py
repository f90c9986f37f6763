import django_tables2 as tables
from django.utils.translation import gettext_lazy as _

from itportal.tables import DateTimeColumn
from provisioning.models import Entitlement


class ConflictTable(tables.Table):
    holder = tables.Column(
        verbose_name=_("Person"),
        accessor="holder__display_name",
        order_by=("holder__user__last_name", "holder__user__first_name"),
    )
    department = tables.Column(verbose_name=_("Department"), accessor="holder__department__name")
    rule_name = tables.Column(verbose_name=_("Rule"))
    item = tables.Column(verbose_name=_("Holds"), accessor="item__name")
    second_item_name = tables.Column(verbose_name=_("and also"))
    granted_at = DateTimeColumn(verbose_name=_("Since"), format="SHORT_DATE_FORMAT")

    class Meta:
        model = Entitlement
        fields = ("holder", "department", "rule_name", "item", "second_item_name", "granted_at")
        order_by = ("rule_name", "holder")
        empty_text = _("Nobody holds two services that a rule keeps apart.")
