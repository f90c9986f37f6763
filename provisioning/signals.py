"""Signals of provisioning, for observers (metrics) that provisioning does not import.

``directory_error`` is sent when a job's directory operation failed; kwargs: ``job``
(the ProvisioningJob) and ``error`` (the classified DirectoryError).

``entitlement_revoked`` is sent inside the transaction that set an entitlement to
revoked (at once, or when its last revoking job ended); kwargs: ``entitlement_id``.
"""

from django.dispatch import Signal

directory_error = Signal()
entitlement_revoked = Signal()
