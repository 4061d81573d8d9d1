"""SQL the ORM has no portable spelling for, written once for SQLite (development, `make test`) and
PostgreSQL (production, CI). Each is evaluated by the database for every row: no per-contact Python."""

import json

from django.db.models import BooleanField, DecimalField, F, Func, IntegerField, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

# What contacts.custom_fields stores for a number ("12.5", "-3"); anything else is not compared.
NUMBER_TEXT = r"^-?[0-9]{1,15}(\.[0-9]+)?$"


def custom_text(key: str) -> Cast:
    """A custom field's stored value as text (NULL when the contact has none). The Cast drops Django's
    JSON key lookups, which on SQLite would expect JSON on the right-hand side of =, <, >."""
    return Cast(KeyTextTransform(key, "custom_fields"), TextField())


class TextAsNumber(Func):
    """Text holding a number, as numeric. On PostgreSQL, text that is not a number (only possible if
    someone bypassed contacts.custom_fields validation) is NULL instead of an error that would fail
    the whole query; SQLite's CAST never fails (it reads such text as 0)."""

    output_field = DecimalField()

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"CAST({sql} AS NUMERIC)", params

    as_sqlite = as_sql  # (Func's own as_sqlite would wrap it in a second CAST)

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"(CASE WHEN {sql} ~ %s THEN ({sql})::numeric END)", (*params, NUMBER_TEXT, *params)


class JsonListHas(Func):
    """TRUE when the multiple-choice custom field `key` includes `option`, else FALSE (never NULL).

    PostgreSQL: jsonb containment (@>), served by the GIN index on custom_fields
    (contacts/0008_custom_fields_gin). SQLite has no containment, so it looks through the array with
    json_each (a missing key yields no rows, hence FALSE)."""

    output_field = BooleanField()

    def __init__(self, key: str, option: str):
        super().__init__(F("custom_fields"))
        self.key = key
        self.option = option

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        # The key is a slug (validated), so it needs no escaping inside the JSON path.
        return (
            f"EXISTS (SELECT 1 FROM json_each({sql}, %s) AS cf WHERE cf.value = %s)",
            (*params, f'$."{self.key}"', self.option),
        )

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"({sql} @> %s::jsonb)", (*params, json.dumps({self.key: [self.option]}))


class MonthDay(Func):
    """month * 100 + day of a date (May 1 -> 501), so "birthday in the next N days" is one or two integer
    ranges. SQLite's strftime instead of Django's Extract, which SQLite runs as a Python function."""

    output_field = IntegerField()

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"CAST(strftime(%s, {sql}) AS INTEGER)", ("%m%d", *params)

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"CAST(EXTRACT(MONTH FROM {sql}) * 100 + EXTRACT(DAY FROM {sql}) AS integer)", (
            *params,
            *params,
        )
