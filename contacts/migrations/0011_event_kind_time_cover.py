"""The events' (kind, occurred_at) index becomes covering: INCLUDE (contact_id, amount).

A segment's event condition ("spent ≥ 200 on purchases in 90 days") groups the window's events by contact;
with the contact and the amount in the index that is an index-only scan instead of a heap fetch per event
(1M contacts / 10M events: ~600 ms -> ~40 ms; docs/benchmarks.md, segments). The new index is built before
the old one is dropped, so the window always has an index. Both statements take the events table's write
lock for as long as the build takes (see docs/benchmarks.md for the time at 10M events).

SQLite has no INCLUDE: there Django creates a plain (kind, occurred_at) index (models.W040, silenced in
scrm/settings.py).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0010_contact_touch"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                fields=["kind", "occurred_at"], include=("contact", "amount"), name="event_kind_time_cover"
            ),
        ),
        migrations.RemoveIndex(
            model_name="event",
            name="event_kind_time",
        ),
    ]
