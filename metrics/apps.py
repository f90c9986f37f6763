from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = _("Metrics")

    def ready(self):
        # Metrics observe the other apps through their signals; none of them imports metrics.
        from django.db.models.signals import post_save
        from django_fsm.signals import post_transition

        from provisioning.models import ProvisioningJob, SyncRun
        from provisioning.signals import directory_error, pipeline_swept
        from requests_app.models import RequestEvent
        from webhooks.models import WebhookAttempt

        post_save.connect(
            on_request_event, sender=RequestEvent, dispatch_uid="metrics_request_event"
        )
        post_transition.connect(
            on_job_transition, sender=ProvisioningJob, dispatch_uid="metrics_job_transition"
        )
        post_save.connect(on_job_saved, sender=ProvisioningJob, dispatch_uid="metrics_job_saved")
        post_save.connect(on_sync_run_saved, sender=SyncRun, dispatch_uid="metrics_sync_run")
        directory_error.connect(
            on_directory_error, sender=ProvisioningJob, dispatch_uid="metrics_directory_error"
        )
        pipeline_swept.connect(
            on_pipeline_swept, sender=ProvisioningJob, dispatch_uid="metrics_pipeline_swept"
        )
        post_save.connect(
            on_webhook_attempt, sender=WebhookAttempt, dispatch_uid="metrics_webhook_attempt"
        )
        # The order's trail in the structured logs (metrics/trail.py).
        from metrics import trail
        from notifications.models import OutgoingMail

        post_save.connect(
            trail.on_request_event, sender=RequestEvent, dispatch_uid="trail_request_event"
        )
        for model, on_saved in (
            (ProvisioningJob, trail.on_job_saved),
            (OutgoingMail, trail.on_mail_saved),
        ):
            post_transition.connect(
                trail.remember_transition,
                sender=model,
                dispatch_uid=f"trail_transition_{model.__name__}",
            )
            post_save.connect(on_saved, sender=model, dispatch_uid=f"trail_saved_{model.__name__}")


def _seconds(start, end) -> float | None:
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


def on_request_event(sender, instance, created, **kwargs):
    """Every transition of a request writes exactly one RequestEvent (never changed later)."""
    from metrics import prometheus as m
    from requests_app.choices import EventKind, RequestState

    if not created or instance.from_state == instance.to_state:
        return  # reminders, escalations and intermediate approval steps
    m.REQUEST_TRANSITIONS.labels(
        from_state=instance.from_state or "none", to_state=instance.to_state
    ).inc()
    service_request = instance.request  # cached: the services pass the instance
    item = service_request.item_snapshot.get("slug", "")
    if instance.kind == EventKind.SUBMIT:
        category = service_request.item_snapshot.get("category", "")
        m.REQUESTS_SUBMITTED.labels(item=item, category=category).inc()
    elif instance.to_state == RequestState.APPROVED and instance.from_state in (
        RequestState.SUBMITTED,
        RequestState.AWAITING_APPROVAL,
    ):
        wait = _seconds(service_request.submitted_at, service_request.approved_at)
        if wait is not None:
            m.APPROVAL_WAIT.labels(item=item).observe(wait)
    elif instance.to_state == RequestState.FULFILLED:
        lead = _seconds(service_request.submitted_at, service_request.closed_at)
        if lead is not None:
            m.LEAD_TIME.labels(item=item).observe(lead)


_OUTCOMES = {"succeed": "succeeded", "fail": "failed", "mark_done": "done_by_hand"}
_RETRIES = {"defer": "automatic", "retry": "manual"}


def on_job_transition(sender, instance, name, source, target, **kwargs):
    """Fires before save(): remember the transition, count it once the row is saved."""
    if name in _OUTCOMES or name in _RETRIES:
        instance._metrics_transition = name


def on_job_saved(sender, instance, **kwargs):
    from metrics import prometheus as m

    name = instance.__dict__.pop("_metrics_transition", None)
    if name is None:
        return
    labels = {"action": instance.kind, "backend": instance.dialect}
    if name in _RETRIES:
        m.JOB_RETRIES.labels(**labels, trigger=_RETRIES[name]).inc()
        return
    m.JOB_OUTCOMES.labels(**labels, outcome=_OUTCOMES[name]).inc()
    if name != "mark_done":
        duration = _seconds(instance.started_at, instance.finished_at)
        if duration is not None:
            m.JOB_DURATION.labels(**labels).observe(duration)


def on_sync_run_saved(sender, instance, **kwargs):
    """A run is saved once when it starts and once when it finished."""
    from metrics import prometheus as m

    duration = _seconds(instance.started_at, instance.finished_at)
    if duration is None or instance.__dict__.get("_metrics_observed"):
        return
    instance._metrics_observed = True
    outcome = "succeeded" if instance.succeeded else "failed"
    m.SYNC_DURATION.labels(kind=instance.kind, outcome=outcome).observe(duration)


def on_directory_error(sender, job, error, **kwargs):
    from metrics import prometheus as m

    kind = "transient" if error.transient else "permanent"
    m.DIRECTORY_ERRORS.labels(kind=kind, backend=job.dialect).inc()


def on_pipeline_swept(sender, counts, **kwargs):
    from metrics import prometheus as m

    m.SWEEPS.inc()
    for kind, count in counts.items():
        m.SWEPT.labels(kind=kind).inc(count)


def on_webhook_attempt(sender, instance, created, **kwargs):
    """One row per HTTP request of a webhook delivery, written once."""
    from metrics import prometheus as m

    if created:
        event_type = instance.delivery.event.event_type  # cached: the service passes it
        m.WEBHOOK_ATTEMPTS.labels(event_type=event_type, outcome=instance.outcome).inc()
