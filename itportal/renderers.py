"""Django's form renderer, with its plain widget templates rendered in Python.

Every ``{{ field }}`` renders the widget's template, and a select or a list of checkboxes
renders one more template (an ``{% include %}`` of option and attribute templates) per
option: the filter form above a list (states, categories, cost centres) cost a third of
"my requests"' CPU (bench/bench_cpu.py), more than its 25 table rows. The templates of
Django's own input, textarea, select and multiple-choice widgets are simple; this renderer
produces their exact markup with Python string operations (the same escaping and
localisation as the template variables) and hands every other template, and any option
template it does not know, to the template engine. If an installed app overrides one of
these templates, the engine renders it (the override wins, as it would without this class).
tests/test_renderers.py compares the output with the templates' for the widgets in use.
"""

from pathlib import Path

import django
from django.forms.renderers import DjangoTemplates
from django.template.base import render_value_in_context
from django.utils.functional import cached_property
from django.utils.html import conditional_escape
from django.utils.safestring import SafeData, mark_safe

_W = "django/forms/widgets/"
_INPUTS = [
    "input", "checkbox", "color", "date", "datetime", "email", "hidden", "number",
    "password", "search", "tel", "text", "time", "url",
]  # fmt: skip
_DJANGO_TEMPLATES = Path(django.__file__).resolve().parent / "forms" / "templates"


class _Fallback(Exception):
    """A widget this module does not render: the template engine does."""


class _Context:
    """What ``{{ value }}`` consults in the form renderer's engine: autoescaping on,
    localisation and time zone as the settings say."""

    autoescape = True
    use_l10n = None
    use_tz = None


_CONTEXT = _Context()


def _var(value) -> str:
    """``{{ value }}``."""
    if callable(value):  # the template engine would call it
        raise _Fallback
    return render_value_in_context(value, _CONTEXT)


def _fmt(value) -> str:
    """``{{ value|stringformat:'s' }}``: no localisation; safe input stays unescaped."""
    if callable(value):
        raise _Fallback
    text = "%s" % (str(value) if isinstance(value, tuple) else value)
    return conditional_escape(mark_safe(text) if isinstance(value, SafeData) else text)


def _attrs(attrs: dict) -> str:
    """django/forms/widgets/attrs.html."""
    out = []
    for name, value in attrs.items():
        if value is not False:
            out.append(" " + _var(name))
            if value is not True:
                out.append('="' + _fmt(value) + '"')
    return "".join(out)


def _input(widget: dict) -> str:
    value = widget["value"]
    return (
        f'<input type="{_var(widget["type"])}" name="{_var(widget["name"])}"'
        + (f' value="{_fmt(value)}"' if value != None else "")  # noqa: E711 (the template's !=)
        + _attrs(widget["attrs"])
        + ">\n"
    )


def _input_option(option: dict) -> str:
    if not option.get("wrap_label"):
        return _input(option) + "\n"
    option_id = option["attrs"].get("id")
    label_for = f' for="{_var(option_id)}"' if option_id else ""
    return f"<label{label_for}>{_input(option)} {_var(option['label'])}</label>\n"


def _select_option(option: dict) -> str:
    return (
        f'<option value="{_fmt(option["value"])}"{_attrs(option["attrs"])}>'
        f"{_var(option['label'])}</option>\n"
    )


_OPTIONS = {
    _W + "select_option.html": _select_option,
    _W + "input_option.html": _input_option,
    # checkbox_option.html and radio_option.html include input_option.html, plus a newline.
    _W + "checkbox_option.html": lambda option: _input_option(option) + "\n",
    _W + "radio_option.html": lambda option: _input_option(option) + "\n",
}


def _option(option: dict) -> str:
    render = _OPTIONS.get(option.get("template_name"))
    if render is None:
        raise _Fallback
    return render(option)


def _groups(optgroups, *, group_open: str, option: str, group_close: str) -> str:
    """The options, in their groups: ``group_open`` takes the group's name, ``option`` the
    option's markup."""
    out = []
    for group, options, _index in optgroups:
        if group:
            out.append(group_open.format(_var(group)))
        out.extend(option.format(_option(o)) for o in options)
        if group:
            out.append(group_close)
    return "".join(out)


def _select(widget: dict) -> str:
    options = _groups(
        widget["optgroups"],
        group_open='\n  <optgroup label="{}">',
        option="\n  {}",
        group_close="\n  </optgroup>",
    )
    return f'<select name="{_var(widget["name"])}"{_attrs(widget["attrs"])}>{options}\n</select>\n'


def _multiple_input(widget: dict) -> str:
    attrs = widget["attrs"]
    id_attr = f' id="{_var(attrs["id"])}"' if attrs.get("id") else ""
    class_attr = f' class="{_var(attrs["class"])}"' if attrs.get("class") else ""
    options = _groups(
        widget["optgroups"],
        group_open="\n  <div><label>{}</label>",
        option="<div>\n    {}</div>",
        group_close="\n  </div>",
    )
    return f"<div{id_attr}{class_attr}>{options}\n</div>\n"


def _textarea(widget: dict) -> str:
    value = widget["value"]
    return (
        f'<textarea name="{_var(widget["name"])}"{_attrs(widget["attrs"])}>\n'
        f"{_var(value) if value else ''}</textarea>\n"
    )


_WIDGETS = {
    **{f"{_W}{name}.html": _input for name in _INPUTS},
    _W + "select.html": _select,
    _W + "multiple_input.html": _multiple_input,
    # checkbox_select.html and radio.html include multiple_input.html, plus a newline.
    _W + "checkbox_select.html": lambda widget: _multiple_input(widget) + "\n",
    _W + "radio.html": lambda widget: _multiple_input(widget) + "\n",
    _W + "textarea.html": _textarea,
}
_NEEDED = [*_WIDGETS, *_OPTIONS, _W + "attrs.html"]


class FastWidgetRenderer(DjangoTemplates):
    """``FORM_RENDERER``: Django's default renderer, its plain widgets rendered in Python."""

    @cached_property
    def fast_widgets(self) -> dict:
        """The Python renderers, if every template they stand for is Django's own file."""
        for name in _NEEDED:
            origin = Path(self.get_template(name).origin.name).resolve()
            if not origin.is_relative_to(_DJANGO_TEMPLATES):
                return {}
        return _WIDGETS

    def render(self, template_name, context, request=None):
        render = self.fast_widgets.get(template_name)
        widget = context.get("widget") if render is not None and len(context) == 1 else None
        if widget is not None:
            try:
                return render(widget).strip()
            except _Fallback:
                pass
        return super().render(template_name, context, request=request)
