"""Queues per kind of work (one place routes every task) and runs that must not overlap."""

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils.module_loading import autodiscover_modules

from itportal.celery import app
from itportal.locks import advisory_lock, lock_key
from itportal.outages import DATABASE_ERRORS
from provisioning.tasks import sync_directory


def queue_of(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


def test_every_task_has_one_of_the_queues():
    autodiscover_modules("tasks")
    ours = sorted(name for name in app.tasks if not name.startswith("celery."))
    assert ours, "no task registered"
    unrouted = {name: queue_of(name) for name in ours}
    unrouted = {n: q for n, q in unrouted.items() if q not in settings.PORTAL_CELERY_QUEUES}
    assert unrouted == {}, "route these tasks in CELERY_TASK_ROUTES (itportal/settings.py)"
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks


# Tasks on one outbox row: they catch database errors themselves and retry with its backoff.
OWN_DATABASE_RETRIES = {
    "provisioning.tasks.run_provisioning_job",
    "notifications.tasks.send_mail",
    "webhooks.tasks.deliver_webhook",
}


# Tasks that use no database: they only send messages.
NO_DATABASE = {"notifications.tasks.wake_mails"}


def test_every_task_meets_a_database_outage_in_a_documented_way():
    """Retry with backoff or leave it to beat's next run (itportal/outages.py)."""
    autodiscover_modules("tasks")
    undecided = [
        name
        for name, task in app.tasks.items()
        if not name.startswith("celery.")
        and name not in OWN_DATABASE_RETRIES | NO_DATABASE
        and not set(DATABASE_ERRORS) <= set(getattr(task, "autoretry_for", ()))
        and not getattr(task.run, "skips_database_errors", False)
    ]
    assert undecided == [], "choose a way in itportal/outages.py for these tasks"


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("provisioning.tasks.run_provisioning_job", "provisioning"),
        ("provisioning.tasks.sweep_provisioning_jobs", "provisioning"),
        ("notifications.tasks.send_mail", "notifications"),
        ("notifications.tasks.wake_mails", "notifications"),
        ("notifications.tasks.sweep_mails", "notifications"),
        ("webhooks.tasks.deliver_webhook", "webhooks"),
        ("provisioning.tasks.sync_directory", "reports"),
        ("provisioning.tasks.reconcile_directory", "reports"),
        ("requests_app.tasks.approvals_remind_and_escalate", "reports"),
        ("privacy.tasks.apply_retention", "reports"),
        ("metrics.tasks.refresh_controlling_rollups", "reports"),
        ("assist.tasks.refresh_reclaim_candidates", "reports"),
    ],
)
def test_routes(task, queue):
    assert queue_of(task) == queue


def test_lock_keys_are_stable_and_distinct():
    assert lock_key("directory-sync") == lock_key("directory-sync")
    assert lock_key("directory-sync") != lock_key("directory-reconcile")
    assert -(2**63) <= lock_key("directory-sync") < 2**63


@pytest.mark.django_db
def test_a_run_under_way_makes_the_second_skip():
    with advisory_lock("directory-sync") as first:
        assert first is True
        with advisory_lock("directory-sync") as second:
            assert second is False
        with advisory_lock("directory-reconcile") as other:
            assert other is True
        # Beat's task and the command both give way to the run under way.
        assert sync_directory.apply(kwargs={"full": True}).get() == {
            "skipped": "another run is under way"
        }
        with pytest.raises(CommandError, match="under way"):
            call_command("directory_sync", verbosity=0)
    with advisory_lock("directory-sync") as again:
        assert again is True
