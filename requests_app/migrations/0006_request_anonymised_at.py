"""Requests: when the retention run anonymised them, and the index it finds them by."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('catalogue', '0009_employee_anonymised_at'),
        ('requests_app', '0005_ratings_automation_flag_controlling_indexes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='servicerequest',
            name='anonymised_at',
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name='anonymised'),
        ),
        migrations.AddIndex(
            model_name='servicerequest',
            index=models.Index(condition=models.Q(('anonymised_at__isnull', True), ('closed_at__isnull', False)), fields=['closed_at'], name='request_to_anonymise_idx'),
        ),
    ]
