from django.db import migrations

from accounts.roles import grant_permissions

OPERATOR = [
    "view_contact", "add_contact", "change_contact", "view_tag", "view_taggroup", "view_tier",
    "view_note", "add_note", "view_event",
]  # fmt: skip


def grant(apps, schema_editor):
    grant_permissions(
        apps,
        "contacts",
        {
            "Operator": OPERATOR,
            "Manager": [*OPERATOR, "assign_owner", "view_auditentry"],
            "Admin": ["*"],
        },
    )


class Migration(migrations.Migration):
    dependencies = [("contacts", "0001_initial"), ("accounts", "0002_roles")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
