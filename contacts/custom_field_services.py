"""Writes to custom field definitions, audited. Values live in Contact.custom_fields; no change here
loses them silently: archiving keeps them, removing an option in use is refused, and only an explicit,
confirmed purge of an archived field deletes values."""

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import Contact, CustomField, CustomFieldKind
from .selectors import option_usage
from .services import audit_record, snapshot
from .touches import contacts_touched

FIELD_AUDITED = ("key", "label_zh", "label_en", "kind", "choices", "required", "position", "archived_at")
CHOICE_KINDS = (CustomFieldKind.CHOICE, CustomFieldKind.MULTI_CHOICE)


class CustomFieldError(Exception):
    """A change that would lose data or is not allowed; nothing was changed."""


class OptionsInUse(CustomFieldError):
    def __init__(self, usage: dict):
        self.usage = usage  # option -> selectors.Total
        super().__init__(
            _("Options still used by contacts cannot be removed: %(list)s.")
            % {
                "list": "; ".join(
                    f"{opt} ({total.value}{'' if total.exact else '+'})" for opt, total in usage.items()
                )
            }
        )


@transaction.atomic
def custom_field_create(
    *,
    actor,
    key: str,
    label_zh: str,
    label_en: str,
    kind: str,
    choices: list[str] | None = None,
    required: bool = False,
    position: int = 0,
) -> CustomField:
    field = CustomField(
        key=key,
        label_zh=label_zh,
        label_en=label_en,
        kind=kind,
        choices=list(choices or []) if kind in CHOICE_KINDS else [],
        required=required,
        position=position,
    )
    field.full_clean()
    field.save()
    audit_record(actor=actor, action="customfield.created", obj=field, after=snapshot(field, FIELD_AUDITED))
    return field


@transaction.atomic
def custom_field_update(
    *,
    actor,
    field: CustomField,
    label_zh: str,
    label_en: str,
    choices: list[str] | None = None,
    required: bool,
    position: int,
) -> CustomField:
    """Change labels, options, required and position; key and type never change.

    Removing an option that contacts still use raises OptionsInUse. Making a field required only
    affects later writes; contacts without a value stay as they are.
    """
    field = CustomField.objects.select_for_update().get(pk=field.pk)
    before = snapshot(field, FIELD_AUDITED)
    new_choices = list(choices or []) if field.kind in CHOICE_KINDS else []
    removed = [option for option in field.choices if option not in new_choices]
    if removed and (usage := option_usage(field, removed)):
        raise OptionsInUse(usage)
    field.label_zh, field.label_en, field.choices = label_zh, label_en, new_choices
    field.required, field.position = required, position
    field.full_clean()
    after = snapshot(field, FIELD_AUDITED)
    changed = [name for name in FIELD_AUDITED if before[name] != after[name]]
    if changed:
        field.save(update_fields=changed)
        audit_record(
            actor=actor,
            action="customfield.updated",
            obj=field,
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
    return field


@transaction.atomic
def custom_field_archive(*, actor, field: CustomField) -> CustomField:
    """Archive ("delete") a field: hidden from forms, filters, imports and the API; every value is kept."""
    if field.archived_at is None:
        field.archived_at = timezone.now()
        field.save(update_fields=["archived_at"])
        audit_record(actor=actor, action="customfield.archived", obj=field, after={"key": field.key})
    return field


@transaction.atomic
def custom_field_restore(*, actor, field: CustomField) -> CustomField:
    if field.archived_at is not None:
        field.archived_at = None
        field.save(update_fields=["archived_at"])
        audit_record(actor=actor, action="customfield.restored", obj=field, after={"key": field.key})
    return field


def _remove_key_sql(key: str) -> tuple[str, list]:
    table = connection.ops.quote_name(Contact._meta.db_table)
    if connection.vendor == "postgresql":
        return (
            f"UPDATE {table} SET custom_fields = custom_fields - %s, updated_at = %s WHERE custom_fields ? %s",
            [key, timezone.now(), key],
        )
    path = f'$."{key}"'
    return (
        f"UPDATE {table} SET custom_fields = json_remove(custom_fields, %s), updated_at = %s "
        f"WHERE json_type(custom_fields, %s) IS NOT NULL",
        [path, timezone.now(), path],
    )


@transaction.atomic
def custom_field_purge_values(*, actor, field: CustomField, confirm_key: str) -> int:
    """Delete every contact's value of an archived field, in one UPDATE. The admin must type the key.

    Returns how many contacts lost a value; one AuditEntry records who, which field and how many.
    """
    field = CustomField.objects.select_for_update().get(pk=field.pk)
    if field.archived_at is None:
        raise CustomFieldError(_("Archive the field before purging its values."))
    if confirm_key.strip() != field.key:
        raise CustomFieldError(_("Type the field key “%(key)s” exactly to confirm.") % {"key": field.key})
    # Before the UPDATE, which removes what says who had a value (a rule may test this archived field).
    contacts_touched(Contact.objects.filter(custom_fields__has_key=field.key).values("id"))
    sql, params = _remove_key_sql(field.key)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        purged = max(cursor.rowcount, 0)
    audit_record(
        actor=actor,
        action="customfield.values_purged",
        obj=field,
        before={"key": field.key, "contacts": purged},
        after={"contacts": 0},
    )
    return purged
