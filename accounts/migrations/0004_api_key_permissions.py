from django.db import migrations

from accounts.roles import grant_permissions


def grant(apps, schema_editor):
    grant_permissions(apps, "accounts", {"Admin": ["*"]})  # API keys are admin-only


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_data_in")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
