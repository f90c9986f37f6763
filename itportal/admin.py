"""Shared bases for the Django admin."""

from django.forms.models import _get_foreign_key


class BoundedInlineMixin:
    """An inline whose formset never builds more forms than it can hold.

    Django builds as many forms as a POST's ``TOTAL_FORMS`` claims, up to ``max_num`` +
    1,000: one forged number cost 22 CPU-seconds on the item page. Here the bound is
    ``max_num`` or the rows that exist, whichever is larger; a larger claim is a form
    error ("Please submit at most … forms").
    """

    max_num = 100

    def get_formset(self, request, obj=None, **kwargs):
        limit = self.get_max_num(request, obj, **kwargs) or 0
        if obj is not None and obj.pk is not None:
            fk = _get_foreign_key(self.parent_model, self.model, fk_name=self.fk_name)
            limit = max(limit, self.get_queryset(request).filter(**{fk.name: obj}).count())
        kwargs.setdefault("absolute_max", max(limit, 1))
        return super().get_formset(request, obj, **kwargs)
