"""``{% large_result_list cl %}``: Django's ``{% result_list cl %}`` (the changelist's
table, admin/change_list_results.html) with the rows rendered per column where the
changelist can (itportal.admin.FastLinksChangeList.results_context)."""

from django import template
from django.contrib.admin.templatetags.admin_list import result_list
from django.contrib.admin.templatetags.base import InclusionAdminNode

register = template.Library()


def _results_context(cl):
    fast = getattr(cl, "results_context", None)
    return fast() if fast is not None else result_list(cl)


@register.tag(name="large_result_list")
def large_result_list_tag(parser, token):
    return InclusionAdminNode(
        parser,
        token,
        func=_results_context,
        template_name="change_list_results.html",
        takes_context=False,
    )
