from django.db import models
from django.utils.translation import gettext_lazy as _


class MailState(models.TextChoices):
    PENDING = "pending", _("Waiting")
    SENDING = "sending", _("Being sent")
    RETRYING = "retrying", _("Waiting to retry")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    # The worker stopped between marking the attempt and recording its outcome: the mail
    # may have arrived. It is not sent again unless an IT admin says so.
    UNCERTAIN = "uncertain", _("Interrupted, perhaps sent")


# Waiting for a worker; the sweeper re-enqueues them when their message got lost.
OPEN_MAIL_STATES = (MailState.PENDING, MailState.RETRYING)
# What an IT admin looks at and may send again.
ATTENTION_MAIL_STATES = (MailState.FAILED, MailState.UNCERTAIN)
