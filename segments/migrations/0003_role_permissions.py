from django.db import migrations

from accounts.roles import grant_permissions

# Every role builds segments (operators group their own customers); which segments a user may open, change
# or share is decided per segment by segments.selectors (the creator, the users it is shared with, managers).
EVERYONE = ["view_segment", "add_segment", "change_segment", "delete_segment"]


def grant(apps, schema_editor):
    grant_permissions(apps, "segments", {"Operator": EVERYONE, "Manager": EVERYONE, "Admin": ["*"]})


class Migration(migrations.Migration):
    dependencies = [("segments", "0002_history_and_refresh_state"), ("accounts", "0002_roles")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
