"""Trigram (pg_trgm) indexes so substring search on name, phone and email stays an index scan
at a million contacts. PostgreSQL only: SQLite (make run) scans, which is fine at demo size."""

from django.db import migrations

INDEXES = {
    "contact_name_trgm": "UPPER(name) gin_trgm_ops",
    "contact_phone_trgm": "phone gin_trgm_ops",
    "contact_email_trgm": "UPPER(email) gin_trgm_ops",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, expression in INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON contacts_contact USING gin ({expression})")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("contacts", "0002_role_permissions")]
    operations = [migrations.RunPython(create, drop)]
