"""The pipeline's inbox becomes a table of its own (contacts.PendingEvent) instead of Event.processed_at."""

from django.db import migrations, models


def owed_events_to_inbox(apps, schema_editor):
    Event = apps.get_model("contacts", "Event")
    PendingEvent = apps.get_model("contacts", "PendingEvent")
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {PendingEvent._meta.db_table} (event_id) "
            f"SELECT id FROM {Event._meta.db_table} WHERE processed_at IS NULL"
        )


def inbox_to_owed_events(apps, schema_editor):
    Event = apps.get_model("contacts", "Event")
    PendingEvent = apps.get_model("contacts", "PendingEvent")
    owed = PendingEvent.objects.values("event_id")
    Event.objects.exclude(id__in=owed).update(processed_at=models.functions.Now())


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0012_tier_index_covers_activity"),
    ]

    operations = [
        migrations.CreateModel(
            name="PendingEvent",
            fields=[
                ("event_id", models.BigIntegerField(primary_key=True, serialize=False)),
            ],
            options={
                "verbose_name": "event owed to the pipeline",
                "verbose_name_plural": "events owed to the pipeline",
            },
        ),
        migrations.RunPython(owed_events_to_inbox, inbox_to_owed_events),
        migrations.RemoveIndex(
            model_name="event",
            name="event_unprocessed",
        ),
        migrations.RemoveField(
            model_name="event",
            name="processed_at",
        ),
    ]
