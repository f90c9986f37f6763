"""``{% order_fields form %}``: the order form's fields and buttons
(``requests/order_fields.html``), the markup of an unbound form kept per process while
what it shows stays the same.

Rendering them (a template per field, the cost centres' options) was about a third of the
order page's CPU, the same markup on every view of an item until its form, its version,
the cost centres, the language or the date change: ``OrderForm.markup_key`` and the
options are the key, so nothing needs invalidating. The cost centres are read once, as
the rendering would read them (one query, whether the markup is kept or not), and given
to the widget; a bound form (data, errors) is rendered every time.
"""

from django import template
from django.template.loader import get_template
from django.utils.safestring import mark_safe

from catalogue.forms import OrderForm
from itportal.memo import Memo
from itportal.statements import KeptRows
from itportal.templatetags.portal_forms import model_choices

register = template.Library()

# A few forms per item and language (pre-filled ones besides): 4 MB at most.
ORDER_FIELDS_MEMO = Memo(1024, 4 << 20)

# The cost centres' statement, the same for every form: compiled once (KeptRows).
_COST_CENTRES = KeptRows(OrderForm.base_fields["cost_centre"].queryset)


def _cost_centre_options(form) -> tuple:
    """The cost centre field's options as texts, its widget given the choices made from
    one plain read of its queryset (``PlainModelChoiceIterator`` would read it again)."""
    field = form.fields["cost_centre"]
    choices = model_choices(field, _COST_CENTRES(field.queryset.db))
    field.widget.choices = choices
    return tuple((str(value), str(label)) for value, label in choices)


@register.simple_tag
def order_fields(form):
    options = _cost_centre_options(form)
    key = form.markup_key()
    render = get_template("requests/order_fields.html").render
    if key is None:
        return mark_safe(render({"form": form}))  # the template's output, escaped as it rendered
    html = ORDER_FIELDS_MEMO.kept((*key, options), lambda: render({"form": form}))
    return mark_safe(html)  # the template's output, escaped as it rendered
