"""``{% large_result_list cl %}``: Django's ``{% result_list cl %}`` (the changelist's
table, admin/change_list_results.html) with the rows rendered per column where the
changelist can (itportal.admin.FastLinksChangeList.results_context);
``{% large_list_filter cl spec %}``: Django's ``{% admin_list_filter cl spec %}`` with
admin/filter.html written in Python."""

from pathlib import Path

import django.contrib.admin
from django import template
from django.contrib.admin.templatetags.admin_list import admin_list_filter, result_list
from django.contrib.admin.templatetags.base import InclusionAdminNode
from django.template import Context
from django.template.base import render_value_in_context
from django.template.loader import get_template
from django.utils.encoding import iri_to_uri
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

register = template.Library()

_DJANGOS_FILTER = str(Path(django.contrib.admin.__file__).parent / "templates/admin/filter.html")


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


@register.simple_tag
def large_list_filter(cl, spec):
    """A list filter's choices as Django's admin/filter.html renders them (when that is
    the template the filter names and no one overrides it), without the template engine:
    a filter of 40 services took a quarter of a millisecond through it, for every view.
    tests/test_admin_changelists.py compares it with Django's."""
    if spec.template != "admin/filter.html" or get_template(spec.template).origin.name != (
        _DJANGOS_FILTER
    ):
        return admin_list_filter(cl, spec)
    context = Context()  # as admin_list_filter renders the template: escaped, localized

    def text(value):
        return render_value_in_context(value, context)

    title = text(spec.title)
    parts = [
        f'\n<details data-filter-title="{title}" open>\n  <summary>\n    ',
        # {% blocktranslate %}: the value escaped, the translation as it is.
        gettext(" By %(filter_title)s ") % {"filter_title": title},
        "\n  </summary>\n  <ul>\n  ",
    ]
    for choice in spec.choices(cl):
        selected = ' class="selected"' if choice["selected"] else ""
        href = text(iri_to_uri(choice["query_string"]))
        parts.append(
            f'\n    <li{selected}>\n    <a href="{href}">{text(choice["display"])}</a></li>\n  '
        )
    parts.append("\n  </ul>\n</details>\n")
    return mark_safe("".join(parts))
