from django import forms
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .custom_fields import active_fields, clean_custom_values, merge_custom_values
from .models import Contact, CustomFieldKind, Source, Tag, TagGroup, Tier
from .pagination import DEFAULT_SORT, SORTS
from .phones import InvalidPhone, normalise_phone
from .selectors import (
    ContactFilters,
    CustomFieldFilter,
    contact_custom_values,
    contacts_visible_to,
    custom_field_label,
    owners_assignable_by,
)

NONE = "none"  # the "unassigned" / "no tier" choice in filters and bulk actions
CUSTOM_PREFIX = "cf_"  # form field name of a custom field: cf_<key>
CHOICE_KINDS = (CustomFieldKind.CHOICE, CustomFieldKind.MULTI_CHOICE)


class _ListField(forms.Field):
    """Several values (checkboxes), passed on unvalidated: clean_custom_values judges them."""

    widget = forms.CheckboxSelectMultiple

    def to_python(self, value):
        return (
            [str(v) for v in value]
            if isinstance(value, list | tuple)
            else ([] if not value else [str(value)])
        )


def custom_form_field(custom_field) -> forms.Field:
    """A form field for one custom field. Values are checked by clean_custom_values, not here."""
    label, required = custom_field_label(custom_field), custom_field.required
    options = [(o, o) for o in custom_field.choices]
    kind = custom_field.kind
    if kind == CustomFieldKind.MULTI_CHOICE:
        return _ListField(
            label=label, required=required, widget=forms.CheckboxSelectMultiple(choices=options)
        )
    if kind == CustomFieldKind.CHOICE:
        return forms.CharField(
            label=label, required=required, widget=forms.Select(choices=[("", "—"), *options])
        )
    if kind == CustomFieldKind.DATE:
        return forms.CharField(label=label, required=required, widget=forms.DateInput(attrs={"type": "date"}))
    if kind == CustomFieldKind.NUMBER:
        return forms.CharField(
            label=label, required=required, widget=forms.TextInput(attrs={"inputmode": "decimal"})
        )
    return forms.CharField(label=label, required=required, max_length=500, strip=True)


class ContactForm(forms.ModelForm):
    """Create and edit. Owner is offered only to users who may assign owners."""

    class Meta:
        model = Contact
        fields = [
            "name", "phone", "email", "external_userid", "gender", "birthday", "city", "source",
            "tier", "owner", "time_zone", "joined_at", "opted_out", "opted_out_reason",
        ]  # fmt: skip
        widgets = {
            "birthday": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "joined_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        }
        help_texts = {"phone": _("Mainland numbers may omit +86; spaces and dashes are fine.")}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["joined_at"].input_formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        if user.has_perm("contacts.assign_owner"):
            self.fields["owner"].queryset = owners_assignable_by(user)
        else:
            del self.fields["owner"]
        self.custom_fields = active_fields()
        stored = self.instance.custom_fields or {}
        for custom_field in self.custom_fields:
            name = CUSTOM_PREFIX + custom_field.key
            self.fields[name] = custom_form_field(custom_field)
            if custom_field.key in stored:
                self.initial[name] = stored[custom_field.key]
        self.custom_values = dict(stored)

    def custom_bound_fields(self):
        return [self[CUSTOM_PREFIX + f.key] for f in self.custom_fields]

    def archived_custom_rows(self) -> list[dict]:
        """Values of archived fields: shown read-only, kept on save."""
        return contact_custom_values(self.instance)[1] if self.instance.custom_fields else []

    def clean(self):
        data = super().clean()
        names = {f.key: CUSTOM_PREFIX + f.key for f in self.custom_fields}
        raw = {key: data.get(name) for key, name in names.items() if name not in self.errors}
        cleaned, errors = clean_custom_values(raw, fields=self.custom_fields)
        for key, message in errors.items():
            if names.get(key) and names[key] not in self.errors:
                self.add_error(names[key], message)
        # Values of archived (or unknown) fields are kept as they are; active ones are replaced.
        self.custom_values = merge_custom_values(self.instance.custom_fields or {}, cleaned, given_keys=names)
        return data

    def contact_data(self) -> dict:
        """Model field values plus the merged custom_fields dict, for contact_create / contact_update."""
        data = {
            name: value for name, value in self.cleaned_data.items() if not name.startswith(CUSTOM_PREFIX)
        }
        data["custom_fields"] = self.custom_values
        return data

    def _duplicate_error(self, field: str, value: str):
        existing = Contact.objects.filter(**{field: value}).exclude(pk=self.instance.pk).first()
        if existing is None:
            return None
        if contacts_visible_to(self.user).filter(pk=existing.pk).exists():
            url = reverse("contact_detail", args=[existing.pk])
            return format_html(_('Already used by <a href="{}">{}</a>.'), url, existing.name)
        return _("Already used by a contact owned by a colleague; ask your manager to reassign it.")

    def clean_phone(self):
        try:
            phone = normalise_phone(self.cleaned_data.get("phone", ""))
        except InvalidPhone as exc:
            raise forms.ValidationError(
                _("Enter a valid phone number, e.g. 138 0013 8000."), code="invalid"
            ) from exc
        if phone and (error := self._duplicate_error("phone", phone)):
            raise forms.ValidationError(error, code="duplicate")
        return phone

    def clean_external_userid(self):
        value = self.cleaned_data.get("external_userid", "").strip()
        if value and (error := self._duplicate_error("external_userid", value)):
            raise forms.ValidationError(error, code="duplicate")
        return value

    def validate_unique(self):
        # clean_phone / clean_external_userid give the friendlier, linked message for these.
        self._validate_unique = False


class NoteForm(forms.Form):
    body = forms.CharField(
        label="", max_length=5000, widget=forms.Textarea(attrs={"rows": 2, "placeholder": _("Add a note…")})
    )


class QuickUpdateForm(forms.Form):
    """One field at a time from the contact page: tier, owner or opt-out."""

    field = forms.ChoiceField(choices=[("tier", "tier"), ("owner", "owner"), ("opted_out", "opted_out")])
    tier = forms.ModelChoiceField(queryset=Tier.objects.all(), required=False)
    owner = forms.ModelChoiceField(queryset=None, required=False)
    opted_out = forms.BooleanField(required=False)
    opted_out_reason = forms.CharField(max_length=200, required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = owners_assignable_by(user)
        self.user = user

    def clean(self):
        data = super().clean()
        if data.get("field") == "owner" and not self.user.has_perm("contacts.assign_owner"):
            raise forms.ValidationError(_("Only managers and admins can assign owners."))
        return data

    def changes(self) -> dict:
        field = self.cleaned_data["field"]
        if field == "opted_out":
            return {
                "opted_out": self.cleaned_data["opted_out"],
                "opted_out_reason": self.cleaned_data["opted_out_reason"],
            }
        return {field: self.cleaned_data[field]}


class ContactTagsForm(forms.Form):
    tags = forms.ModelMultipleChoiceField(queryset=Tag.objects.select_related("group"), required=False)


def tag_choices():
    """Tags grouped by tag group, for <optgroup> selects."""
    groups = TagGroup.objects.prefetch_related("tags")
    return [(group.name, [(tag.pk, tag.name) for tag in group.tags.all()]) for group in groups]


class ContactFilterForm(forms.Form):
    """Parses the list's query string. Invalid values are dropped and reported, never a 500."""

    q = forms.CharField(required=False, max_length=100, label=_("Search"))
    owner = forms.ChoiceField(required=False, label=_("Owner"))
    tag = forms.TypedMultipleChoiceField(required=False, coerce=int, label=_("Tags"))
    tier = forms.ChoiceField(required=False, label=_("Tier"))
    source = forms.ChoiceField(
        required=False, choices=[("", _("Any source")), *Source.choices], label=_("Source")
    )
    opted_out = forms.ChoiceField(
        required=False,
        choices=[("", _("Any")), ("yes", _("Do not disturb")), ("no", _("Reachable"))],
        label=_("Do not disturb"),
    )
    inactive_days = forms.IntegerField(
        required=False, min_value=1, max_value=3650, label=_("Inactive for more than (days)")
    )
    sort = forms.ChoiceField(
        required=False, choices=[(k, label) for k, (_s, label) in SORTS.items()], label=_("Sort")
    )
    cursor = forms.CharField(required=False, max_length=500)
    # One custom field condition: cf=<key>, then by type cf_value (+ cf_op for text), cf_min/cf_max, cf_from/cf_to.
    cf = forms.ChoiceField(required=False, label=_("Custom field"))
    cf_value = forms.CharField(required=False, max_length=500, label=_("Custom field value"))
    cf_op = forms.ChoiceField(
        required=False, choices=[("contains", _("contains")), ("equals", _("equals"))], label=_("Match")
    )
    cf_min = forms.DecimalField(required=False, max_digits=30, decimal_places=10, label=_("At least"))
    cf_max = forms.DecimalField(required=False, max_digits=30, decimal_places=10, label=_("At most"))
    cf_from = forms.DateField(required=False, label=_("From"))
    cf_to = forms.DateField(required=False, label=_("To"))

    def __init__(self, data, *, user):
        # The filter form's "any tag" option submits tag=""; it means no tag filter, not a bad value.
        if hasattr(data, "getlist") and "" in data.getlist("tag"):
            data = data.copy()
            data.setlist("tag", [v for v in data.getlist("tag") if v])
        super().__init__(data)
        owners = owners_assignable_by(user) if user.has_perm("contacts.assign_owner") else []
        self.fields["owner"].choices = [("", _("Any owner")), (NONE, _("Unassigned (公海)"))] + [
            (str(u.pk), str(u)) for u in owners
        ]
        self.show_owner_filter = bool(owners)
        self.fields["tag"].choices = tag_choices()
        self.fields["tier"].choices = [("", _("Any tier")), (NONE, _("No tier"))] + [
            (str(t.pk), t.name) for t in Tier.objects.all()
        ]
        self.custom_fields = {f.key: f for f in active_fields()}
        self.fields["cf"].choices = [("", _("Any custom field"))] + [
            (key, custom_field_label(f)) for key, f in self.custom_fields.items()
        ]

    def clean(self):
        data = super().clean()
        custom_field = self.custom_fields.get(data.get("cf") or "")
        value = data.get("cf_value") or ""
        if custom_field and custom_field.kind in CHOICE_KINDS and value and value not in custom_field.choices:
            self.add_error("cf_value", _("“%(value)s” is not an option of this field.") % {"value": value})
        return data

    def custom_filter(self) -> CustomFieldFilter | None:
        custom_field = self.custom_fields.get(self.value("cf", "") or "")
        if custom_field is None or any(name.startswith("cf_") for name in self.errors):
            return None  # a condition with a bad part is dropped whole (and reported), never half-applied
        return CustomFieldFilter(
            key=custom_field.key,
            kind=custom_field.kind,
            value=(self.value("cf_value", "") or "").strip(),
            op=self.value("cf_op") or "contains",
            min=self.value("cf_min"),
            max=self.value("cf_max"),
            date_from=self.value("cf_from"),
            date_to=self.value("cf_to"),
        )

    def ignored(self) -> list[str]:
        """Messages for the query-string values that were dropped."""
        return [
            _("Ignored the filter “%(field)s”: %(error)s")
            % {"field": self.fields[name].label or name, "error": " ".join(errs)}
            for name, errs in self.errors.items()
            if name != "cursor"
        ]

    def value(self, name: str, default=None):
        return self.cleaned_data.get(name) if name not in self.errors else default

    def filters(self) -> ContactFilters:
        owner, tier = self.value("owner", ""), self.value("tier", "")
        opted = self.value("opted_out", "")
        return ContactFilters(
            q=self.value("q", ""),
            owner=int(owner) if owner and owner != NONE else None,
            unassigned=owner == NONE,
            tags=self.value("tag", []) or [],
            tier=int(tier) if tier and tier != NONE else None,
            no_tier=tier == NONE,
            source=self.value("source", ""),
            opted_out={"yes": True, "no": False}.get(opted),
            inactive_days=self.value("inactive_days"),
            custom=self.custom_filter(),
        )

    def sort_key(self) -> str:
        return self.value("sort") or DEFAULT_SORT


class BulkActionForm(forms.Form):
    ACTIONS = [
        ("add_tag", _("Add tag")),
        ("remove_tag", _("Remove tag")),
        ("set_tier", _("Set tier")),
        ("assign_owner", _("Assign owner")),
    ]
    action = forms.ChoiceField(choices=ACTIONS)
    ids = forms.TypedMultipleChoiceField(
        coerce=int, error_messages={"required": _("Select at least one contact.")}
    )
    tag = forms.ModelChoiceField(queryset=Tag.objects.all(), required=False)
    tier = forms.CharField(required=False)
    owner = forms.CharField(required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        # Any id a bigint holds is accepted here; the service rejects ids the user may not see, as a whole.
        # (A longer number would overflow the database driver: a 500 instead of "not yours".)
        self.fields["ids"].valid_value = lambda value: str(value).isdigit() and len(str(value)) <= 18

    def clean(self):
        data = super().clean()
        action = data.get("action")
        if action in ("add_tag", "remove_tag") and not data.get("tag"):
            self.add_error("tag", _("Choose a tag."))
        if action == "set_tier":
            data["tier_obj"] = self._pick(Tier.objects.all(), data.get("tier"), "tier", _("Choose a tier."))
        if action == "assign_owner":
            if not self.user.has_perm("contacts.assign_owner"):
                raise forms.ValidationError(_("Only managers and admins can assign owners."))
            data["owner_obj"] = self._pick(
                owners_assignable_by(self.user), data.get("owner"), "owner", _("Choose an owner.")
            )
        return data

    def _pick(self, queryset, raw, field, message):
        if raw == NONE:
            return None
        if raw and str(raw).isdigit() and (obj := queryset.filter(pk=int(raw)).first()):
            return obj
        self.add_error(field, message)
        return None


class TagGroupForm(forms.ModelForm):
    class Meta:
        model = TagGroup
        fields = ["name", "description", "position"]


class TagForm(forms.ModelForm):
    class Meta:
        model = Tag
        fields = ["group", "name", "colour"]
        widgets = {"colour": forms.TextInput(attrs={"type": "color"})}


class TierForm(forms.ModelForm):
    class Meta:
        model = Tier
        fields = ["name", "rank", "colour"]
        widgets = {"colour": forms.TextInput(attrs={"type": "color"})}
        help_texts = {"rank": _("Higher rank = more valuable tier.")}
