"""The content of single controlling pages (the satisfaction and anomalies pages), kept
per process: ``{% kept_content %}``."""

from django import template
from django.urls import get_script_prefix, get_urlconf
from django.utils import timezone, translation
from django.utils.safestring import mark_safe

from itportal.memo import Memo, is_value, kept_value_key
from metrics.templatetags.reports import filters_key, table_key

register = template.Library()

# A page's content per key (``content_key``): 50-70 kB each, a few dozen filters, comment
# pages and languages of the two pages.
CONTENT_MEMO = Memo(128, 8 << 20)


def content_key(context, values) -> tuple | None:
    """The key of a controlling page's content block (templates/controlling/table_page.html),
    or None to render it: everything it shows is a function of the view's class (title,
    intro, links), the query string, the filter form's key (its data and options, the
    language, the time zone and the date), the period, the tables' keys (their rows, pager
    and columns: ``reports.table_key``; the charts are made from the main table's rows),
    ``values`` (what the page's own blocks show), whether the anomalies page is on (the
    navigation), the language, the time zone and the script prefix."""
    from assist.selectors import enabled  # metrics reads from every app; assist says

    request = context.get("request")
    filterset = context.get("filter")
    if request is None or filterset is None or not is_value(values):
        return None
    tables = [context.get("table"), *(context.get("extra_tables") or ())]
    keys = []
    for table in tables:
        key = None if table is None else table_key(context, table)
        if key is None:
            return None
        keys.append(key)
    return (
        type(context.get("view")),
        request.get_full_path(),
        filters_key(filterset),
        context.get("period"),
        tuple(keys),
        values,
        bool(enabled("anomalies")),
        translation.get_language(),
        timezone.get_current_timezone_name(),
        get_script_prefix(),
        get_urlconf(),
        context.autoescape,
        context.use_l10n,
    )


def view_content_key(view, *shown) -> tuple | None:
    """The key of a page's content as its view makes it before building a table, or None:
    ``shown`` are what its tables and own blocks show, plain values or kept rows (their
    ``kept_value_key``, found by identity), the rest as ``content_key``: the view's class,
    the query string (a table's page and page size), the filter form's key and what
    every page's content depends on. Of kept rows the tables are then not even built."""
    from assist.selectors import enabled  # metrics reads from every app; assist says

    parts = []
    for part in shown:
        if type(part) is list:
            part = tuple(map(kept_value_key, part))
            if None in part:
                return None
        elif not is_value(part):
            return None
        parts.append(part)
    return (
        type(view),
        view.request.get_full_path(),
        filters_key(view.filterset),
        tuple(parts),
        bool(enabled("anomalies")),
        translation.get_language(),
        timezone.get_current_timezone_name(),
        get_script_prefix(),
        get_urlconf(),
    )


def kept_view_content(key: tuple | None) -> str | None:
    return None if key is None else CONTENT_MEMO.get(key)


_UNSET = object()


class KeptContentNode(template.Node):
    def __init__(self, nodelist, values):
        self.nodelist = nodelist
        self.values = values

    def render(self, context):
        # The view's key (view_content_key), and then the content it found under it.
        key = context.get("content_key", _UNSET)
        if key is not _UNSET:
            html = context.get("kept_content")
            if html is not None:
                return mark_safe(html)  # the template's output, escaped as it rendered
            # A template context's escaping and localisation are the view's defaults.
            if not context.autoescape or context.use_l10n is not None:
                key = None
        if key is None or key is _UNSET:
            values = tuple(value.resolve(context) for value in self.values)
            key = content_key(context, values)
        if key is None:
            return self.nodelist.render(context)
        html = CONTENT_MEMO.get(key)
        if html is None:
            html = str(self.nodelist.render(context))
            CONTENT_MEMO.put(key, html)
        return mark_safe(html)  # the template's output, escaped as it rendered


@register.tag
def kept_content(parser, token):
    """``{% kept_content value … %}…{% endkept_content %}``: its content rendered once per
    ``content_key`` (the values: what the page's own parts show besides the tables). On a
    page's every view its nine links, a dozen translations, the filter form's and tables'
    memo look-ups and the charts were rendered anew: a tenth of its CPU."""
    values = [parser.compile_filter(bit) for bit in token.split_contents()[1:]]
    nodelist = parser.parse(("endkept_content",))
    parser.delete_first_token()
    return KeptContentNode(nodelist, values)
