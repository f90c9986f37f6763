"""The Django admin's navigation sidebar (admin/nav_sidebar.html) with its list of apps
rendered in Python: through admin/app_list.html, two dozen models' rows of links cost a
sixth of a changelist's CPU. tests/test_admin_changelists.py compares it with Django's."""

from urllib.parse import quote

from django import template
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

register = template.Library()


def _current(url, path: str) -> bool:
    # The template's ``url in request.path|urlencode``; a missing URL is never current.
    return isinstance(url, str) and url in path


@register.simple_tag(takes_context=True)
def sidebar_app_list(context, app_list):
    """admin/app_list.html as the sidebar includes it (``show_changelinks=False``); for an
    app list the admin site keeps (itportal.admin.KeptAppList), rendered once per set of
    links the page's path marks as current."""
    if not app_list:
        text = conditional_escape(gettext("You don’t have permission to view or edit anything."))
        return mark_safe(f"<p>{text}</p>")
    request = context.get("request")
    path = quote(request.path, safe="/") if request is not None else ""
    sidebars = getattr(app_list, "sidebars", None)
    if sidebars is None:
        return _rendered(app_list, path)
    current = tuple(
        url
        for app in app_list
        for url in (app["app_url"], *(model.get("admin_url") for model in app["models"]))
        if _current(url, path)
    )
    rendered = sidebars.get(current)
    if rendered is None:
        if len(sidebars) >= app_list.SIDEBARS_KEPT:
            sidebars.clear()
        rendered = sidebars[current] = _rendered(app_list, path)
    return rendered


def _rendered(app_list, path: str):
    head = (
        '<thead class="visually-hidden"><tr>'
        f'<th scope="col">{conditional_escape(gettext("Model name"))}</th>'
        f'<th scope="col">{conditional_escape(gettext("Add link"))}</th>'
        f'<th scope="col">{conditional_escape(gettext("Change or view list link"))}</th>'
        "</tr></thead>"
    )
    add = conditional_escape(gettext("Add"))
    parts = []
    for app in app_list:
        label = conditional_escape(app["app_label"])
        name = conditional_escape(app["name"])
        title = gettext("Models in the %(name)s application") % {"name": name}
        current_app = " current-app" if _current(app["app_url"], path) else ""
        parts.append(
            f'<div class="app-{label} module{current_app}"><table><caption>'
            f'<a href="{conditional_escape(app["app_url"])}" class="section" title="{title}">'
            f"{name}</a></caption>{head}"
        )
        for model in app["models"]:
            model_name = conditional_escape(str(model["object_name"]).lower())
            row_id = f"{label}-{model_name}"
            model_label = conditional_escape(model["name"])
            admin_url = model.get("admin_url")
            current = _current(admin_url, path)
            if admin_url:
                aria = ' aria-current="page"' if current else ""
                link = f'<a href="{conditional_escape(admin_url)}"{aria}>{model_label}</a>'
            else:
                link = model_label
            add_url = model.get("add_url")
            add_cell = (
                f'<td><a href="{conditional_escape(add_url)}" class="addlink" '
                f'aria-describedby="{row_id}">{add}</a></td>'
                if add_url
                else "<td></td>"
            )
            parts.append(
                f'<tr class="model-{model_name}{" current-model" if current else ""}">'
                f'<th scope="row" id="{row_id}">{link}</th>{add_cell}</tr>'
            )
        parts.append("</table></div>")
    return mark_safe("".join(parts))
