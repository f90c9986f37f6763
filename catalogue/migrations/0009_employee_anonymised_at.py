"""Employees: when the retention run anonymised them."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('catalogue', '0008_item_history'),
    ]

    operations = [
        migrations.AddField(
            model_name='employee',
            name='anonymised_at',
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name='anonymised'),
        ),
    ]
