"""Autovacuum settings that keep the contacts' and events' covering indexes index-only under a steady write load.

An index-only scan reads the heap for every page the visibility map does not mark all-visible, and only VACUUM
sets those marks. With PostgreSQL's defaults a table is vacuumed after 20% of it changed (contacts: 200,000
updated rows at a million) or, for inserts, 20% more rows (events: two million new events at ten million): in
between, the pipeline's updates and the new events leave more and more pages unmarked. Measured at 1M contacts
after 240,000 events: the four-condition count went from 92 ms to 225 ms (116,761 heap fetches) and the
event-window count from 250 ms to 350 ms. Vacuuming after 2% of contacts or 1% of new events changed keeps the
marks nearly current at a small, steady cost. Storage parameters are PostgreSQL's; SQLite has no vacuum daemon.
"""

from django.db import migrations

SETTINGS = {
    "contacts_contact": "autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02",
    "contacts_event": (
        "autovacuum_vacuum_insert_scale_factor = 0.01, autovacuum_vacuum_scale_factor = 0.05, "
        "autovacuum_analyze_scale_factor = 0.02"
    ),
}
RESET = {
    "contacts_contact": "autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor",
    "contacts_event": (
        "autovacuum_vacuum_insert_scale_factor, autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor"
    ),
}


def tune(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table, settings in SETTINGS.items():
            schema_editor.execute(f"ALTER TABLE {table} SET ({settings})")


def untune(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table, names in RESET.items():
            schema_editor.execute(f"ALTER TABLE {table} RESET ({names})")


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0013_pending_event_outbox"),
    ]

    operations = [migrations.RunPython(tune, untune)]
