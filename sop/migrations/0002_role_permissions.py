from django.db import migrations

from accounts.roles import grant_permissions

# Operators work their own SOP tasks; managers also see results and reassign their team's tasks; admins
# configure templates, steps and the guards (frequency cap, quiet hours).
OPERATOR = ["view_soptemplate", "work_touchpoints"]
MANAGER = OPERATOR + ["reassign_touchpoints", "view_sop_results"]


def grant(apps, schema_editor):
    grant_permissions(apps, "sop", {"Operator": OPERATOR, "Manager": MANAGER, "Admin": ["*"]})


class Migration(migrations.Migration):
    dependencies = [("sop", "0001_initial"), ("accounts", "0002_roles")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
