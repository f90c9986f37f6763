"""Shared model bases."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class OutboxRow(models.Model):
    """Bookkeeping of a transactional outbox row (itportal/outbox.py): how often it was
    tried, when it is due next, what went wrong last. The state field and its transitions
    belong to each outbox, as their states differ."""

    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]
