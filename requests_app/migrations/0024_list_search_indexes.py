""" "My requests" searched and filtered from its two indexes; the plain foreign-key indexes
on the requester and the beneficiary dropped.

The search (RequestFilterSet.search) reads the matching services and people first and then
filters the requests by their item and beneficiary: with both in the requester's and the
beneficiary's index, a user's thousands of requests are counted and paged from the index
alone, not from a heap page each (49 and 64 ms at 1M for a search; before the search
changed, 0.8 s). Every query by requester or beneficiary alone, the deletion checks of
PROTECT and the database's foreign-key checks included, reads these indexes by their first
column: the plain ones (13 MB each at 1M) served nothing else.

Built and dropped CONCURRENTLY, replaced indexes renamed first and dropped only once their
successors serve (as 0023). A build that fails leaves an INVALID index behind: drop it
before running the migration again.
"""

from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models

# The names Django gave the foreign keys' own indexes (schema_editor._create_index_name).
REQUESTER_FK_INDEX = "requests_app_servicerequest_requester_id_ea9aebb5"
BENEFICIARY_FK_INDEX = "requests_app_servicerequest_beneficiary_id_e3a699bd"


def _drop_concurrently(name: str, column: str) -> migrations.RunSQL:
    return migrations.RunSQL(
        f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"',
        reverse_sql=(
            f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" '
            f'ON "requests_app_servicerequest" ("{column}")'
        ),
    )


def _rebuilt(name: str, person: str, include: tuple) -> list:
    """The list index ``name`` on (``person``, newest first) built anew with ``include``."""
    old = f"{name.removesuffix('_idx')}_old_idx"
    return [
        migrations.RenameIndex(model_name="servicerequest", old_name=name, new_name=old),
        AddIndexConcurrently(
            model_name="servicerequest",
            index=models.Index(fields=[person, "-created_at"], include=include, name=name),
        ),
        RemoveIndexConcurrently(model_name="servicerequest", name=old),
    ]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("requests_app", "0023_list_indexes"),
    ]

    operations = [
        *_rebuilt("request_requester_idx", "requester", ("id", "state", "item", "beneficiary")),
        *_rebuilt("request_beneficiary_idx", "beneficiary", ("id", "state", "requester", "item")),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="servicerequest",
                    name="requester",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=models.deletion.PROTECT,
                        related_name="placed_requests",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="requester",
                    ),
                ),
                migrations.AlterField(
                    model_name="servicerequest",
                    name="beneficiary",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=models.deletion.PROTECT,
                        related_name="requests",
                        to="catalogue.employee",
                        verbose_name="beneficiary",
                    ),
                ),
            ],
            database_operations=[
                _drop_concurrently(REQUESTER_FK_INDEX, "requester_id"),
                _drop_concurrently(BENEFICIARY_FK_INDEX, "beneficiary_id"),
            ],
        ),
    ]
