from django.db import migrations

from accounts.roles import grant_permissions


def grant(apps, schema_editor):
    # Managers bring data in and take it out for their team; operators do neither (exports leak lists).
    grant_permissions(
        apps,
        "contacts",
        {
            "Manager": ["import_data", "view_importjob", "export_contacts", "view_exportjob"],
            "Admin": ["*"],
        },
    )


class Migration(migrations.Migration):
    dependencies = [("contacts", "0004_data_in")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
