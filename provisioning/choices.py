from django.db import models
from django.utils.translation import gettext_lazy as _


class ActionKind(models.TextChoices):
    ADD_TO_GROUP = "add_to_group", _("Add to group")
    REMOVE_FROM_GROUP = "remove_from_group", _("Remove from group")
    CREATE_ACCOUNT = "create_account", _("Create account")
    SET_ATTRIBUTES = "set_attributes", _("Set attributes")
    ENABLE_ACCOUNT = "enable_account", _("Enable account")
    DISABLE_ACCOUNT = "disable_account", _("Disable account")


# What undoes an action when an entitlement is revoked. Setting attributes has no
# general reverse: the previous values are not the portal's to restore.
REVERSE = {
    ActionKind.ADD_TO_GROUP: ActionKind.REMOVE_FROM_GROUP,
    ActionKind.REMOVE_FROM_GROUP: ActionKind.ADD_TO_GROUP,
    ActionKind.CREATE_ACCOUNT: ActionKind.DISABLE_ACCOUNT,
    ActionKind.ENABLE_ACCOUNT: ActionKind.DISABLE_ACCOUNT,
    ActionKind.DISABLE_ACCOUNT: ActionKind.ENABLE_ACCOUNT,
}


class JobState(models.TextChoices):
    PENDING = "pending", _("Pending")
    RUNNING = "running", _("Running")
    RETRYING = "retrying", _("Waiting to retry")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class Direction(models.TextChoices):
    GRANT = "grant", _("Grant")
    REVOKE = "revoke", _("Revoke")


class EntitlementState(models.TextChoices):
    ACTIVE = "active", _("Active")
    REVOKING = "revoking", _("Being revoked")
    REVOKED = "revoked", _("Revoked")
