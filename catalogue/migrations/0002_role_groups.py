"""Create the role groups; IT admins may manage the catalogue and organisation in the admin."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

IT_ADMIN = "IT-Administration"
CONTROLLING = "IT-Controlling"
CATALOGUE_MODELS = [
    "category",
    "catalogueitem",
    "formfield",
    "approvalpolicystep",
    "costcentre",
    "department",
    "employee",
]


def forwards(apps, schema_editor):
    # Permissions are normally created after all migrations; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    admins, _ = Group.objects.get_or_create(name=IT_ADMIN)
    Group.objects.get_or_create(name=CONTROLLING)
    admins.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="catalogue", content_type__model__in=CATALOGUE_MODELS
        ),
        # The employee admin picks users through an autocomplete, which needs view rights.
        *Permission.objects.filter(content_type__app_label="auth", codename="view_user"),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("catalogue", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
