"""Webhook signing secrets are encrypted at rest: widen the columns to text, encrypt the
stored plain secrets with FIELD_ENCRYPTION_KEYS, then declare the encrypted field (the
column stays text, so the last step changes nothing in the database)."""

from django.db import migrations, models

import itportal.crypto


def encrypt_existing(apps, schema_editor):
    # At this point the fields are plain text fields: the values read are the stored ones.
    Endpoint = apps.get_model("webhooks", "WebhookEndpoint")
    for endpoint in Endpoint.objects.all().only("pk", "secret", "previous_secret"):
        Endpoint.objects.filter(pk=endpoint.pk).update(
            secret=itportal.crypto.encrypt(endpoint.secret) if endpoint.secret else "",
            previous_secret=(
                itportal.crypto.encrypt(endpoint.previous_secret)
                if endpoint.previous_secret
                else ""
            ),
        )


def decrypt_existing(apps, schema_editor):
    Endpoint = apps.get_model("webhooks", "WebhookEndpoint")
    for endpoint in Endpoint.objects.all().only("pk", "secret", "previous_secret"):
        Endpoint.objects.filter(pk=endpoint.pk).update(
            secret=itportal.crypto.decrypt(endpoint.secret) if endpoint.secret else "",
            previous_secret=(
                itportal.crypto.decrypt(endpoint.previous_secret)
                if endpoint.previous_secret
                else ""
            ),
        )


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0001_webhooks_outbox"),
    ]

    operations = [
        migrations.AlterField(
            model_name="webhookendpoint",
            name="secret",
            field=models.TextField(editable=False, verbose_name="signing secret"),
        ),
        migrations.AlterField(
            model_name="webhookendpoint",
            name="previous_secret",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.RunPython(encrypt_existing, decrypt_existing),
        migrations.AlterField(
            model_name="webhookendpoint",
            name="previous_secret",
            field=itportal.crypto.EncryptedTextField(blank=True, editable=False),
        ),
        migrations.AlterField(
            model_name="webhookendpoint",
            name="secret",
            field=itportal.crypto.EncryptedTextField(editable=False, verbose_name="signing secret"),
        ),
    ]
