from django.db import migrations

from metrics import gauges

# The tables this migration counts: failed jobs and failed or uncertain mails (metrics.gauges).
TABLES = ("provisioning_provisioningjob", "notifications_outgoingmail")


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0007_monthlyfigures_commented"),
        ("notifications", "0002_in_portal_notifications"),
        ("provisioning", "0014_licence_pool_indexes"),
    ]

    operations = [gauges.migration_operation(TABLES)]
