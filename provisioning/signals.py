"""Signals of provisioning, for observers (metrics) that provisioning does not import.

``directory_error`` is sent when a job's directory operation failed; kwargs: ``job``
(the ProvisioningJob) and ``error`` (the classified DirectoryError).
"""

from django.dispatch import Signal

directory_error = Signal()
