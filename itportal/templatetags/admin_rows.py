"""``{% large_result_list cl %}``: Django's ``{% result_list cl %}`` (the changelist's
table, admin/change_list_results.html) with the rows rendered per column where the
changelist can (itportal.admin.FastLinksChangeList.results_context);
``{% large_list_filter cl spec %}``: Django's ``{% admin_list_filter cl spec %}`` with
admin/filter.html written in Python; ``{% large_admin_actions %}``: Django's
``{% admin_actions %}``, kept per process; ``{% large_pagination cl %}`` and
``{% large_search_form cl %}``: Django's ``{% pagination cl %}`` and ``{% search_form cl %}``,
kept per process."""

from itertools import chain
from pathlib import Path

import django.contrib.admin
from django import template
from django.contrib.admin.filters import ChoicesFieldListFilter, RelatedFieldListFilter
from django.contrib.admin.helpers import ActionForm
from django.contrib.admin.templatetags.admin_list import (
    admin_actions,
    admin_list_filter,
    pagination,
    result_list,
    search_form,
)
from django.contrib.admin.templatetags.base import InclusionAdminNode
from django.db.models import Field
from django.template import Context
from django.template.base import render_value_in_context
from django.template.loader import get_template
from django.urls import get_script_prefix
from django.utils.encoding import iri_to_uri
from django.utils.functional import Promise
from django.utils.html import conditional_escape
from django.utils.safestring import SafeData, SafeString, mark_safe
from django.utils.text import capfirst
from django.utils.translation import get_language, gettext

from itportal.memo import Memo

register = template.Library()


_ADMIN_TEMPLATES = Path(django.contrib.admin.__file__).parent / "templates/admin"
_DJANGOS_FILTER = str(_ADMIN_TEMPLATES / "filter.html")
_DJANGOS_RESULTS = str(_ADMIN_TEMPLATES / "change_list_results.html")
_DJANGOS_ACTIONS = str(_ADMIN_TEMPLATES / "actions.html")


def _results_context(cl):
    fast = getattr(cl, "results_context", None)
    return fast() if fast is not None else result_list(cl)


class _ResultListNode(InclusionAdminNode):
    """Django's admin/change_list_results.html for a table without forms or hidden fields
    written in Python (_results_table), where no one overrides the template: through the
    template engine its header cells and rows were a twentieth of a changelist's CPU.

    The table is kept per process under what it shows (FastLinksChangeList.results_key:
    the rows' values, the columns, the list's parameters, the language): its header and
    cells took a tenth of an unfiltered changelist's CPU on every view."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kept = Memo(256, 8 << 20)

    def render(self, context):
        super_render = super().render
        template = _admin_template(context, self.template_name)
        if template.origin.name != _DJANGOS_RESULTS:
            return super_render(context)
        args, kwargs = self.get_resolved_arguments(context)
        results_key = getattr(args[0], "results_key", None) if len(args) == 1 else None
        key = results_key() if results_key is not None else None
        if key is not None:
            kept = self.kept.get(key)
            if kept is not None:
                return kept
        data = self.func(*args, **kwargs)
        if data.get("result_hidden_fields") or any(
            getattr(row, "form", None) is not None for row in data["results"]
        ):
            new_context = context.new(data)
            csrf_token = context.get("csrf_token")
            if csrf_token is not None:
                new_context["csrf_token"] = csrf_token
            return template.render(new_context)
        table = _results_table(data)
        if key is not None:
            self.kept.put(key, table)
        return table


@register.tag(name="large_result_list")
def large_result_list_tag(parser, token):
    return _ResultListNode(
        parser,
        token,
        func=_results_context,
        template_name="change_list_results.html",
        takes_context=False,
    )


def _results_table(data) -> str:
    """admin/change_list_results.html's output for ``data`` (no hidden fields, no forms):
    its text, line breaks and indentation included."""
    if not data["results"]:
        return "\n\n\n"
    context = Context()  # as the inclusion tag renders: escaped, localized

    def text(value):
        return render_value_in_context(value, context)

    several = data["num_sorted_fields"] > 1
    remove, toggle = text(gettext("Remove from sorting")), text(gettext("Toggle sorting"))
    parts = ['\n\n\n<div class="results">\n<table id="result_list">\n<thead>\n<tr>\n']
    for header in data["result_headers"]:
        parts.append(f'\n<th scope="col"{text(header["class_attrib"])}>\n   ')
        if header["sortable"] and header["sort_priority"] > 0:
            priority = text(header["sort_priority"])
            title = gettext("Sorting priority: %(priority_number)s") % {"priority_number": priority}
            ascending = "ascending" if header["ascending"] else "descending"
            parts.append(
                '\n       <div class="sortoptions">\n'
                f'         <a class="sortremove" href="{text(header["url_remove"])}"'
                f' title="{remove}"></a>\n         '
                + (
                    f'<span class="sortpriority" title="{title}">{priority}</span>'
                    if several
                    else ""
                )
                + f'\n         <a href="{text(header["url_toggle"])}" class="toggle {ascending}"'
                f' title="{toggle}"></a>\n       </div>\n   '
            )
        # |capfirst: a string filter that keeps a safe text (the checkbox header) safe.
        name = capfirst(str(header["text"]))
        name = text(mark_safe(name) if isinstance(header["text"], SafeData) else name)
        if header["sortable"]:
            label = f'<a href="{text(header["url_primary"])}">{name}</a>'
        else:
            label = f"<span>{name}</span>"
        parts.append(f'\n   <div class="text">{label}</div>\n   <div class="clear"></div>\n</th>')
    parts.append("\n</tr>\n</thead>\n<tbody>\n")
    for row in data["results"]:
        parts.append("\n\n<tr>")
        parts.extend(text(cell) for cell in row)
        parts.append("</tr>\n")
    parts.append("\n</tbody>\n</table>\n</div>\n\n")
    return mark_safe("".join(parts))


class _ActionsNode(InclusionAdminNode):
    """Django's ``{% admin_actions %}`` (admin/actions.html: the action form's choice of
    actions and the "Go" button), kept per process where Django's template renders an
    unbound ActionForm without the selection counter: it then follows from the language,
    the actions offered (the user's permissions) and the button's index alone, and its
    form rendered through the template engine was 0.45 ms of every view. Anything else
    is Django's; tests/test_admin_changelists.py compares them."""

    KEPT = 256
    kept: dict = {}

    def render(self, context):
        action_form = context.get("action_form")
        if (
            type(action_form) is not ActionForm
            or action_form.is_bound
            or context.get("actions_selection_counter")
            or _admin_template(context, self.template_name).origin.name != _DJANGOS_ACTIONS
        ):
            return super().render(context)
        index = context.get("action_index", -1) + 1
        key = (
            get_language(),
            index,
            action_form.auto_id,
            action_form.prefix,
            tuple((value, str(name)) for value, name in action_form.fields["action"].choices),
        )
        try:
            rendered = self.kept.get(key)
        except TypeError:  # choices in groups: Django's
            return super().render(context)
        if rendered is None:
            rendered = super().render(context)  # sets the index as Django does
            if len(self.kept) >= self.KEPT:
                self.kept.clear()
            self.kept[key] = rendered
        else:
            context["action_index"] = index
        return rendered


@register.tag(name="large_admin_actions")
def large_admin_actions_tag(parser, token):
    return _ActionsNode(parser, token, func=admin_actions, template_name="actions.html")


class _KeptListNode(InclusionAdminNode):
    """Django's inclusion tag of a changelist (``{% pagination cl %}``, ``{% search_form
    cl %}``), its markup kept per process under what it is rendered from: the list's
    parameters (its query string, the search text), its page and counts, the model (whose
    names it shows and whose templates it chooses), the language and the URL prefix. Each
    was a third to half a millisecond of every view through the template engine, for
    markup that differs between pages only by these values. Without them (another kind of
    changelist, a long search text, parameters that are no texts) it is Django's;
    tests/test_admin_changelists.py compares them."""

    QUERY_MAX = 200

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kept = Memo(512, 4 << 20)

    def render(self, context):
        key = self._key(self.args[0].resolve(context)) if len(self.args) == 1 else None
        if key is None:
            return super().render(context)
        return self.kept.kept(key, lambda: super(_KeptListNode, self).render(context))

    def _key(self, cl) -> tuple | None:
        from itportal.admin import FastLinksChangeList

        if not isinstance(cl, FastLinksChangeList) or cl.formset is not None:
            return None
        if len(cl.query) > self.QUERY_MAX:
            return None
        params = []
        for values in (cl.params, cl.filter_params):
            for name, value in values.items():
                if isinstance(value, list):
                    value = tuple(value)
                if not isinstance(name, str) or not all(
                    isinstance(item, str)
                    for item in (value if isinstance(value, tuple) else (value,))
                ):
                    return None
                params.append((name, value))
        paginator = cl.paginator
        return (
            get_language(),
            get_script_prefix(),
            cl.model,
            type(cl.model_admin),
            type(paginator),
            tuple(params),
            cl.query,
            cl.page_num,
            paginator.num_pages,
            paginator.per_page,
            getattr(paginator, "count_is_exact", None),
            cl.result_count,
            cl.full_result_count,
            cl.show_all,
            cl.can_show_all,
            cl.multi_page,
            cl.is_popup,
            cl.add_facets,
            cl.to_field,
            tuple(cl.search_fields),
            str(cl.search_help_text) if cl.search_help_text is not None else None,
        )


@register.tag(name="large_pagination")
def large_pagination_tag(parser, token):
    return _KeptListNode(
        parser, token, func=pagination, template_name="pagination.html", takes_context=False
    )


@register.tag(name="large_search_form")
def large_search_form_tag(parser, token):
    return _KeptListNode(
        parser, token, func=search_form, template_name="search_form.html", takes_context=False
    )


def _admin_template(context, name: str):
    """The admin template ``name`` for the page's model, as InclusionAdminNode chooses
    it."""
    opts = context["opts"]
    names = [
        f"admin/{opts.app_label.lower()}/{opts.model_name}/{name}",
        f"admin/{opts.app_label.lower()}/{name}",
        f"admin/{name}",
    ]
    return context.template.engine.select_template(names)


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


class _NoKey(Exception):
    """A fragment rendered from something its key cannot hold: rendered per view."""


def _shown(value):
    """A value a fragment shows, as a key part: its type with it (``1`` and ``True`` are
    equal keys but render differently); a lazy translation as its text."""
    if isinstance(value, Promise):
        value = str(value)
    if type(value) in _SHOWN_TYPES:
        return (type(value), value)
    raise _NoKey


# A safe text renders unescaped: its type in the key tells it apart.
_SHOWN_TYPES = frozenset({str, SafeString, int, bool, type(None)})


def _frozen(value):
    """``value`` as a key part: plain values, lists, dicts of them, model fields."""
    if isinstance(value, (list, tuple)):
        # A filter's choices, (key, name) pairs of numbers and texts: their repr, in C
        # (the same repr is the same values of the same types).
        kinds = set(map(type, value))
        if kinds <= _REPR_TYPES or (
            kinds == _TUPLE and _REPR_TYPES.issuperset(map(type, chain.from_iterable(value)))
        ):
            return (_REPR, repr(value))
        return tuple(_frozen(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((name, _frozen(item)) for name, item in value.items()))
    if isinstance(value, Field):
        return value
    return _shown(value)


# Values whose repr says what they are (not a safe text, whose repr is its text's).
_REPR_TYPES = frozenset({str, int, bool, type(None)})
_TUPLE = {tuple}
_REPR = object()


def _media_key(context):
    from itportal.admin import KeptMedia

    media = context.get("media")
    if type(media) is not KeptMedia:
        raise _NoKey
    return media._key


def _changelist(context):
    from itportal.admin import FastLinksChangeList

    cl = context.get("cl")
    if not isinstance(cl, FastLinksChangeList) or cl.formset is not None:
        raise _NoKey
    return cl


def _header_key(context):
    """base.html's header: the branding, the user's name and links, the logout form."""
    user = context.get("user")
    return (
        _shown(context.get("has_permission")),
        _shown(context.get("site_url")),
        _shown(context.get("site_header")),
        _shown(user.get_short_name()),
        _shown(user.get_username()),
        _shown(user.is_active),
        _shown(user.is_staff),
        _shown(user.is_anonymous),
        _shown(user.has_usable_password()),
    )


def _breadcrumbs_key(context):
    """change_list.html's breadcrumbs: the model's app and names (base.html's: the title)."""
    return (_changelist(context).opts, _shown(context.get("title")))


def _title_key(context):
    _changelist(context)  # no formset, so no "Error:"
    return tuple(_shown(context.get(name)) for name in ("title", "subtitle", "site_title"))


def _extrastyle_key(context):
    cl = _changelist(context)
    return (
        cl.formset is None,
        bool(context.get("action_form")),
        _shown(context.get("actions_on_top")),
        _shown(context.get("actions_on_bottom")),
        _media_key(context),
    )


def _object_tools_key(context):
    cl = _changelist(context)
    return (
        cl.opts,
        _shown(context.get("has_add_permission")),
        _shown(context.get("preserved_filters")),
        _shown(context.get("is_popup")),
        _shown(context.get("to_field")),
    )


def _nav_sidebar_key(context):
    """admin/nav_sidebar.html: the app list the site keeps (the same for its copies) and
    the page's path, which marks its own links."""
    kept_as = getattr(context.get("available_apps"), "kept_as", None)
    if kept_as is None:
        raise _NoKey
    return (kept_as, context.request.path)


# The list filters whose markup follows from their state alone (their attributes: the
# field, the parameters in force, the choices read), as Django renders them.
_STATE_CHOICES = (RelatedFieldListFilter.choices, ChoicesFieldListFilter.choices)


def _filters_key(context):
    """The filter sidebar: each filter's state, the list's parameters (its links keep
    them), the facet and "clear all" links. Not with counts (facets): their queries."""
    cl = _changelist(context)
    if cl.add_facets:
        raise _NoKey
    specs = []
    for spec in cl.filter_specs:
        if type(spec).choices not in _STATE_CHOICES or spec.template != "admin/filter.html":
            raise _NoKey
        # Its request is for the facets' counts only.
        state = {name: value for name, value in vars(spec).items() if name != "request"}
        specs.append((type(spec), _frozen(state)))
    return (
        cl.model,
        _frozen(cl.filter_params),
        _shown(cl.has_filters),
        _shown(cl.has_active_filters),
        _shown(cl.is_facets_optional),
        _shown(cl.add_facet_link),
        _shown(cl.remove_facet_link),
        _shown(cl.clear_all_filters_qs),
        tuple(specs),
    )


_KEYS = {
    "header": _header_key,
    "breadcrumbs": _breadcrumbs_key,
    "title": _title_key,
    "extrastyle": _extrastyle_key,
    "extrahead": _media_key,
    "object-tools": _object_tools_key,
    "nav-sidebar": _nav_sidebar_key,
    "filters": _filters_key,
}

# A stand-in for the CSRF token in a kept fragment, the view's own token put in its place.
_CSRF_MARK = "0kept0csrf0token0"
_CSRF_INPUT = '<input type="hidden" name="csrfmiddlewaretoken" value="%s">'


class _KeptNode(template.Node):
    """``{% kept "name" %}…{% endkept %}``: a part of the changelist page (its header, its
    filters…) rendered once per process for what it shows (``_KEYS[name]``: the user's
    name, the model, the filters' choices…, with the page's template, the language and
    the URL prefix), the view's CSRF token put in. Through the template engine the page's
    header, breadcrumbs, styles and filters were a fifth of a changelist's CPU, for
    markup that differs between views only by these values. Without a key (a formset, a
    filter of another kind, facets) it is rendered per view;
    tests/test_admin_changelists.py compares the pages with Django's."""

    def __init__(self, name: str, nodelist):
        self.name = name
        self.key = _KEYS[name]
        self.nodelist = nodelist
        self.kept = Memo(512, 4 << 20)

    def render(self, context):
        request = getattr(context, "request", None)
        try:
            if request is None:
                raise _NoKey
            match = getattr(request, "resolver_match", None)
            key = (
                context.template,
                get_language(),
                get_script_prefix(),
                getattr(request, "urlconf", None),
                getattr(request, "current_app", None),
                getattr(match, "namespace", None),
                self.key(context),
            )
        except (_NoKey, AttributeError, TypeError):
            return self.nodelist.render(context)
        kept = self.kept.get(key)
        if kept is None:
            with context.push(csrf_token=_CSRF_MARK):
                kept = self.nodelist.render(context)
            if kept.count(_CSRF_MARK) != kept.count(_CSRF_INPUT % _CSRF_MARK):
                return self.nodelist.render(context)  # the token shown otherwise
            self.kept.put(key, kept)
        if _CSRF_MARK in kept:
            token = context.get("csrf_token")
            if not token or token == "NOTPROVIDED":  # noqa: S105 - CsrfTokenNode's case
                return self.nodelist.render(context)
            kept = kept.replace(_CSRF_MARK, conditional_escape(token))
        return mark_safe(kept)


@register.tag(name="kept")
def kept_tag(parser, token):
    bits = token.split_contents()
    if len(bits) != 2 or bits[1][0] not in "\"'" or bits[1][1:-1] not in _KEYS:
        raise template.TemplateSyntaxError(f"{bits[0]} takes one of {sorted(_KEYS)}")
    nodelist = parser.parse(("endkept",))
    parser.delete_first_token()
    return _KeptNode(bits[1][1:-1], nodelist)
