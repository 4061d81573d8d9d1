"""The (tier, id) index also carries last_active_at: a tier-and-inactivity rule is counted from the index alone."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0011_event_kind_time_cover"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The new index first, so list filters by tier never go without one.
        migrations.AddIndex(
            model_name="contact",
            index=models.Index(
                fields=["tier", "id"], include=("last_active_at",), name="contact_tier_id_active"
            ),
        ),
        migrations.RemoveIndex(
            model_name="contact",
            name="contact_tier_id",
        ),
    ]
