from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from itportal.crypto import EncryptedTextField, rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every value encrypted at rest with the first key of FIELD_ENCRYPTION_KEYS "
        "(run after putting a new key first; then the old key can be removed)."
    )

    def handle(self, *args, **options):
        for model in apps.get_models():
            fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
            if fields:
                count = _rotate_table(model, [f.column for f in fields])
                self.stdout.write(f"{model._meta.label}: {count} rows re-encrypted")


@transaction.atomic
def _rotate_table(model, columns: list[str]) -> int:
    """Rotate the stored tokens (not the decrypted values) of one table, row by row."""
    quote = connection.ops.quote_name
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    selected = ", ".join(quote(c) for c in columns)
    rotated = 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {pk}, {selected} FROM {table} FOR UPDATE")  # noqa: S608 - names only
        for pk_value, *tokens in cursor.fetchall():
            changes = {c: rotate(t) for c, t in zip(columns, tokens, strict=True) if t}
            if not changes:
                continue
            assignments = ", ".join(f"{quote(c)} = %s" for c in changes)
            cursor.execute(
                f"UPDATE {table} SET {assignments} WHERE {pk} = %s",  # noqa: S608 - names only
                [*changes.values(), pk_value],
            )
            rotated += 1
    return rotated
