from django import template

from catalogue import markdown

register = template.Library()


@register.filter
def render_markdown(text):
    return markdown.render(text)


@register.filter
def answer_display(value):
    """A stored form answer as text: people by name, lists joined, booleans as words."""
    from django.utils.translation import gettext as _

    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, dict):
        return f"{value.get('name', '')} ({value.get('uid', '')})"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if hasattr(mapping, "get") else None
