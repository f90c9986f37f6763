"""The state machines' base: django-fsm's concurrency guard with a thread-safe refresh.

django-fsm's ``FSMModelMixin.refresh_from_db`` reloads a protected state field by
switching the protection off *on the field* — one object shared by every instance in
every thread — and on again afterwards. In a threaded server two refreshes overlap: the
second one switches the protection back on while the first is still waiting for its row,
and the first then fails with "Direct state modification is not allowed" (9 of about
2,480 concurrent API orders failed so, and were rolled back).

Here the protection is never switched. The field's descriptor refuses only to overwrite
a state the instance has loaded already, so the refresh drops the instance's own copy of
the states it reloads and lets Django write them fresh; nothing outside this instance
changes.
"""

from __future__ import annotations

import inspect

from django.db import models
from django_fsm import ConcurrentTransitionMixin, FSMFieldDescriptor, FSMFieldMixin

_STATE_FIELDS: dict[type, tuple] = {}  # model class -> its FSM fields (ConcurrentStateMixin)
_RELOADING = "_itportal_reloading_states"  # instance attribute while refresh_from_db runs


class ConcurrentStateMixin(ConcurrentTransitionMixin):
    """Use instead of ``django_fsm.ConcurrentTransitionMixin`` (save inside atomic blocks)."""

    @property
    def state_fields(self) -> tuple:
        # The model's state fields, found once per model class: django-fsm filters all of
        # a model's fields for them in every instance's __init__ (36 of a request), a
        # fifth of building a row of a list.
        model = type(self)
        fields = _STATE_FIELDS.get(model)
        if fields is None:
            fields = _STATE_FIELDS[model] = tuple(
                field for field in self._meta.fields if isinstance(field, FSMFieldMixin)
            )
        return fields

    def refresh_from_db(self, using=None, fields=None, from_queryset=None) -> None:
        # Every protected state is reloaded, even when ``fields`` leaves it out: the
        # concurrency mixin reads the state of each instance it builds, the row Django
        # reloads from included, and Django copies every field that row has.
        protected = [
            field.attname
            for field in self._meta.concrete_fields
            if isinstance(field, FSMFieldMixin) and field.protected
        ]
        kept = {name: self.__dict__.pop(name) for name in protected if name in self.__dict__}
        self.__dict__[_RELOADING] = frozenset(kept)
        if fields is not None:
            fields = {*fields, *kept}  # in the same statement as the fields asked for
        try:
            # Django's own refresh, past FSMModelMixin's switch of the shared field.
            models.Model.refresh_from_db(
                self, using=using, fields=fields, from_queryset=from_queryset
            )
        except BaseException:
            for name, value in kept.items():  # the row is gone or unreadable: as before
                self.__dict__.setdefault(name, value)
            raise
        finally:
            del self.__dict__[_RELOADING]
        self._update_initial_state()  # what ConcurrentTransitionMixin.refresh_from_db does

    def get_deferred_fields(self) -> set[str]:
        # The states dropped for a refresh are not deferred: else Django leaves them out of
        # its statement and reads them with a second one, and a state could then come from
        # a later commit than the other fields (a mail "waiting to retry" without its error).
        reloading = self.__dict__.get(_RELOADING)
        deferred = super().get_deferred_fields()
        return deferred - reloading if reloading else deferred


# Where ConcurrentTransitionMixin keeps the states an instance was loaded with.
INITIAL_STATES = "_ConcurrentTransitionMixin__initial_states"


def loaded_state_names(model) -> tuple[str, ...] | None:
    """For a ConcurrentStateMixin model: the attribute names of its state fields, in the
    order ``_update_initial_state`` records them, where each field's descriptor only
    stores the value it is given (no protection to check on a new object, no proxy class
    to switch to). An object of it made from its columns without ``__init__`` is the
    ORM's once ``INITIAL_STATES`` holds these columns' values (itportal.statements makes
    a changelist's requests so). None for any other model."""
    if (
        not issubclass(model, ConcurrentStateMixin)
        or inspect.getattr_static(model, "state_fields")
        is not vars(ConcurrentStateMixin)["state_fields"]
    ):
        return None
    names = []
    for field in model._meta.fields:
        if not isinstance(field, FSMFieldMixin):
            continue
        descriptor = inspect.getattr_static(model, field.attname, None)
        if (
            type(descriptor) is not FSMFieldDescriptor
            or descriptor.field is not field
            or field.state_proxy
            or type(field).set_state is not FSMFieldMixin.set_state
            or field.attname != field.name
        ):
            return None
        names.append(field.attname)
    return tuple(names)
