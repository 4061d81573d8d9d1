from django.db import migrations

from accounts.roles import grant_permissions


def grant(apps, schema_editor):
    grant_permissions(apps, "scrm", {"Admin": ["*"]})


class Migration(migrations.Migration):
    dependencies = [("scrm", "0001_initial"), ("accounts", "0002_roles")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
