"""Signals of provisioning, for observers (metrics) that provisioning does not import.

``directory_error`` is sent when a job's directory operation failed; kwargs: ``job``
(the ProvisioningJob) and ``error`` (the classified DirectoryError).

``pipeline_swept`` is sent after each run of the sweeper; kwargs: ``counts`` (what it
enqueued again, by kind: ``overdue_job``, ``abandoned_job``, ``approved_request``).

``entitlement_revoked`` is sent inside the transaction that set an entitlement to
revoked (at once, or when its last revoking job ended); kwargs: ``entitlement_id``.
"""

from django.dispatch import Signal

directory_error = Signal()
entitlement_revoked = Signal()
pipeline_swept = Signal()
