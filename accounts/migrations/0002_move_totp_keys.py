"""Move django-otp's TOTP devices (plain keys) into the encrypted model, and back.

The rows keep their user, name, confirmation, clock drift, last step and throttling, so
nobody has to set up their app again; only a session verified by a moved device asks for a
code once more (the device has a new id).
"""

from django.db import migrations

FIELDS = (
    "user_id", "name", "confirmed", "key", "step", "t0", "digits", "tolerance", "drift",
    "last_t", "throttling_failure_timestamp", "throttling_failure_count", "created_at",
    "last_used_at",
)  # fmt: skip


def _move(source, target):
    for device in source.objects.order_by("pk").iterator(chunk_size=500):
        target.objects.create(**{field: getattr(device, field) for field in FIELDS})
        device.delete()


def forwards(apps, schema_editor):
    _move(apps.get_model("otp_totp", "TOTPDevice"), apps.get_model("accounts", "EncryptedTOTPDevice"))


def backwards(apps, schema_editor):
    _move(apps.get_model("accounts", "EncryptedTOTPDevice"), apps.get_model("otp_totp", "TOTPDevice"))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_encrypted_totp_device"),
        ("otp_totp", "0003_add_timestamps"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]
