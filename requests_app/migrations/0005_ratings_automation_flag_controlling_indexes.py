"""Ratings, the "fulfilled automatically" flag and the number of approval steps (both
backfilled), and indexes for the controlling pages."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


# Fulfilled automatically: the system completed it (a "complete" record without an actor),
# no person took, completed, failed or reopened it, and no grant job of the request was
# marked done by hand. Plain SQL without table aliases, so it runs on SQLite (demo) too.
BACKFILL = """
UPDATE requests_app_servicerequest SET fulfilled_automatically = TRUE
WHERE state = 'fulfilled'
  AND EXISTS (
      SELECT 1 FROM requests_app_requestevent e
      WHERE e.request_id = requests_app_servicerequest.id
        AND e.kind = 'complete' AND e.actor_id IS NULL)
  AND NOT EXISTS (
      SELECT 1 FROM requests_app_requestevent e
      WHERE e.request_id = requests_app_servicerequest.id
        AND e.actor_id IS NOT NULL AND e.kind IN ('take', 'complete', 'fail', 'reopen'))
  AND NOT EXISTS (
      SELECT 1 FROM provisioning_provisioningjob j
      WHERE j.request_id = requests_app_servicerequest.id
        AND j.direction = 'grant' AND j.entitlement_id IS NULL
        AND j.finished_by_id IS NOT NULL)
"""


# Approval steps the request got at submission: the approvals it has.
BACKFILL_STEPS = """
UPDATE requests_app_servicerequest SET approval_steps = (
    SELECT COUNT(*) FROM requests_app_approval a
    WHERE a.request_id = requests_app_servicerequest.id)
WHERE EXISTS (
    SELECT 1 FROM requests_app_approval a
    WHERE a.request_id = requests_app_servicerequest.id)
"""


class Migration(migrations.Migration):

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('catalogue', '0003_directory_group_field'),
        ('requests_app', '0004_approval_escalated_from'),
        # The backfill reads provisioning jobs (marked done by hand).
        ('provisioning', '0003_syncrun_entitlement_review_note_driftfinding'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Rating',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('score', models.PositiveSmallIntegerField(verbose_name='score')),
                ('comment', models.CharField(blank=True, default='', max_length=1000, verbose_name='comment')),
                ('rated_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now, verbose_name='rated')),
            ],
            options={
                'verbose_name': 'rating',
                'verbose_name_plural': 'ratings',
                'ordering': ['-rated_at', '-id'],
            },
        ),
        migrations.AddField(
            model_name='servicerequest',
            name='approval_steps',
            field=models.PositiveSmallIntegerField(default=0, help_text='Number of approval steps the request got when it was submitted.', verbose_name='approval steps'),
        ),
        migrations.AddField(
            model_name='servicerequest',
            name='fulfilled_automatically',
            field=models.BooleanField(default=False, help_text='Fulfilled by an automation without anyone taking, completing, failing or reopening it by hand, and without a provisioning job marked done by hand.', verbose_name='fulfilled automatically'),
        ),
        migrations.AlterField(
            model_name='requestevent',
            name='kind',
            field=models.CharField(choices=[('create', 'Created'), ('submit', 'Submitted'), ('start_approval', 'Approval started'), ('approve_without_steps', 'Approved (no approval needed)'), ('approve', 'Approved'), ('reject', 'Rejected'), ('cancel', 'Cancelled'), ('take', 'Taken into fulfilment'), ('start_automation', 'Automated fulfilment started'), ('complete', 'Fulfilled'), ('fail', 'Failed'), ('reopen', 'Reopened'), ('remind', 'Reminder sent'), ('escalate', 'Escalated'), ('rate', 'Rated')], max_length=30, verbose_name='action'),
        ),
        migrations.AddIndex(
            model_name='servicerequest',
            index=models.Index(fields=['state', 'closed_at'], include=['id', 'item', 'cost_centre', 'beneficiary', 'price_once', 'price_monthly', 'submitted_at', 'approved_at', 'approval_steps', 'fulfilled_automatically'], name='request_state_closed_idx'),
        ),
        migrations.AddIndex(
            model_name='servicerequest',
            index=models.Index(fields=['submitted_at'], include=['item', 'beneficiary', 'cost_centre', 'state'], name='request_submitted_idx'),
        ),
        migrations.AddField(
            model_name='rating',
            name='rated_by',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='rated by'),
        ),
        migrations.AddField(
            model_name='rating',
            name='request',
            field=models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='rating', to='requests_app.servicerequest', verbose_name='request'),
        ),
        migrations.AddConstraint(
            model_name='rating',
            constraint=models.CheckConstraint(condition=models.Q(('score__gte', 1), ('score__lte', 5)), name='rating_score_1_to_5', violation_error_message='The score must be between 1 and 5.'),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.RunSQL(BACKFILL_STEPS, migrations.RunSQL.noop),
    ]
