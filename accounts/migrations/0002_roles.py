from django.db import migrations

from accounts.roles import grant_permissions


def create_roles(apps, schema_editor):
    grant_permissions(
        apps,
        "accounts",
        {"Operator": [], "Manager": ["view_user"], "Admin": ["*"]},
    )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
