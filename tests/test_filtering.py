"""django-filter made cheaper per request (itportal/filtering.py) keeps each filterset's
filters and form its own and answers as the library's deep copies did."""

import django_filters
import pytest
from django import forms
from django.contrib.auth import get_user_model
from django.http import QueryDict
from django_filters import filters, filterset

from itportal.filtering import copy_filters_shallowly

pytestmark = pytest.mark.django_db


class _SharedForm(forms.Form):
    # Declared on the form class: shared by every request, so still copied per form.
    note = forms.CharField(required=False)


def _users(request):
    return get_user_model().objects.filter(is_active=request.user.is_active)


class _UserFilterSet(django_filters.FilterSet):
    username = django_filters.CharFilter(lookup_expr="icontains", label="Name")
    me = django_filters.ModelChoiceFilter(
        field_name="id", queryset=_users, label="Me", method="filter_me"
    )
    state = django_filters.ChoiceFilter(
        field_name="is_active", choices=[("1", "active"), ("0", "inactive")]
    )

    class Meta:
        model = get_user_model()
        fields = ["username"]
        form = _SharedForm

    def filter_queryset(self, queryset):
        self.form.cleaned_data.pop("note", None)  # the form's own field, no filter's
        return super().filter_queryset(queryset)

    def filter_me(self, queryset, name, value):
        return queryset.filter(pk=value.pk)


class _Request:
    def __init__(self, user):
        self.user = user


@pytest.fixture
def users(django_user_model):
    return (
        django_user_model.objects.create(username="anna", is_active=True),
        django_user_model.objects.create(username="bert", is_active=False),
    )


def _render(filterset):
    return str(filterset.form) + repr(sorted(filterset.qs.values_list("username", flat=True)))


def test_filtersets_built_in_sequence_keep_filters_and_forms_apart(users):
    anna, bert = users
    first = _UserFilterSet(
        QueryDict(f"username=an&me={anna.pk}"), queryset=None, request=_Request(anna)
    )
    first.form.fields["username"].widget.attrs["class"] = "first-only"
    first.form.fields["note"].label = "first only"
    first_users = list(first.qs)
    second = _UserFilterSet(QueryDict("state=0"), request=_Request(bert))

    for name, filter_ in first.filters.items():
        assert filter_ is not _UserFilterSet.base_filters[name]
        assert filter_ is not second.filters[name]
        assert filter_.extra is not second.filters[name].extra
        assert filter_.parent is first and second.filters[name].parent is second
    assert first.filters["me"].filter.f is first.filters["me"]
    assert second.filters["me"].filter.f is second.filters["me"]
    # Each request's choices come from its own user; the class's filter built no field.
    assert list(first.form.fields["me"].queryset) == [anna]
    assert list(second.form.fields["me"].queryset) == [bert]
    assert "_field" not in _UserFilterSet.base_filters["me"].__dict__
    assert "queryset" not in _UserFilterSet.base_filters["me"].extra or (
        _UserFilterSet.base_filters["me"].extra["queryset"] is _users
    )
    # What the first form changed stays in the first form.
    assert "first-only" not in str(second.form)
    assert second.form.fields["note"].label is None
    assert _SharedForm.base_fields["note"].label is None
    assert first_users == [anna]
    assert list(second.qs) == [bert]
    assert second.form.data["state"] == "0" and "state" not in first.form.data


def test_shallow_copies_answer_as_deep_ones(users):
    anna, _ = users
    queries = ["", f"username=an&me={anna.pk}", "state=0&me=x", "username=zz"]

    def answers():
        return [
            (_render(f), f.is_valid(), dict(f.form.errors))
            for f in (_UserFilterSet(QueryDict(q), request=_Request(anna)) for q in queries)
        ]

    shallow = answers()
    # The library's own copies, for comparison; then the cheaper ones again.
    filterset.BaseFilterSet.get_form_class = filterset.BaseFilterSet.get_form_class.library
    del filters.Filter.__deepcopy__, filters.Filter._portal_shallow_copies
    try:
        assert answers() == shallow
    finally:
        copy_filters_shallowly()
    assert filterset.BaseFilterSet.get_form_class.library.__module__ == "django_filters.filterset"
