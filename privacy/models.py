"""Stand-ins for people whose data passed its retention period (privacy/retention.py)."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Placeholder(models.Model):
    """A user account that stands in for real people in old records.

    Two kinds, told apart by ``key``: ``anonymous:<department id>`` is the anonymous person
    of a department (an employee record in that department, so the controlling figures per
    department stay), ``pseudonym:<digest>`` the stable pseudonym of one person in the audit
    trail (the digest is a keyed hash; without the key nobody can tell whose it is). The
    audit trail's append-only trigger lets actors be replaced only by users listed here.
    """

    key = models.CharField(_("key"), max_length=100, unique=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.PROTECT,
        related_name="placeholder",
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("placeholder person")
        verbose_name_plural = _("placeholder people")

    def __str__(self) -> str:
        return self.key
