from django.db import migrations

from accounts.roles import grant_permissions


def grant(apps, schema_editor):
    # Operators and managers record orders, refunds and visits by hand on the contact page.
    grant_permissions(apps, "contacts", {"Operator": ["add_event"], "Manager": ["add_event"], "Admin": ["*"]})


class Migration(migrations.Migration):
    dependencies = [("contacts", "0005_data_in_permissions")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
