"""Forms of the custom field settings pages."""

import re

from django import forms
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from .custom_fields import MULTI_SEPARATORS
from .models import CustomField, CustomFieldKind

# Lowercase letters, digits and single underscores, starting with a letter: safe in JSON paths
# (a digits-only key would be read as an array index), in query strings and in message variables.
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
KEY_MAX = 40
OPTION_MAX = 100
OPTIONS_MAX = 100
CHOICE_KINDS = (CustomFieldKind.CHOICE, CustomFieldKind.MULTI_CHOICE)


def suggest_key(label_en: str) -> str:
    """A key from the English label: "Favourite colour" -> "favourite_colour", unique among fields."""
    base = re.sub(r"_+", "_", slugify(label_en).replace("-", "_")).strip("_")[:KEY_MAX] or "field"
    if not base[0].isalpha():
        base = f"f_{base}"[:KEY_MAX]
    key, n = base, 2
    while CustomField.objects.filter(key=key).exists():
        suffix = f"_{n}"
        key, n = f"{base[: KEY_MAX - len(suffix)]}{suffix}", n + 1
    return key


def parse_options(text: str) -> list[str]:
    """One option per line; blank lines and repeats dropped, order kept."""
    options = []
    for line in (text or "").splitlines():
        option = line.strip()
        if option and option not in options:
            options.append(option)
    return options


class _FieldFormMixin:
    def clean_choices(self):
        options = parse_options(self.cleaned_data.get("choices", ""))
        for option in options:
            if MULTI_SEPARATORS.search(option):
                raise forms.ValidationError(
                    _(
                        "“%(option)s”: an option cannot contain , ， 、 ; or ； (they separate options in imports)."
                    ),
                    params={"option": option},
                )
            if len(option) > OPTION_MAX:
                raise forms.ValidationError(
                    _("“%(option)s” is longer than %(n)d characters."),
                    params={"option": option, "n": OPTION_MAX},
                )
        if len(options) > OPTIONS_MAX:
            raise forms.ValidationError(_("At most %(n)d options."), params={"n": OPTIONS_MAX})
        return options

    def _check_options_for(self, kind):
        options = self.cleaned_data.get("choices")
        if options is None:
            return
        if kind in CHOICE_KINDS and not options:
            self.add_error("choices", _("A choice field needs at least one option."))
        elif kind not in CHOICE_KINDS:
            self.cleaned_data["choices"] = []


class CustomFieldCreateForm(_FieldFormMixin, forms.ModelForm):
    choices = forms.CharField(
        label=_("Options"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("For choice fields: one option per line, in display order."),
    )

    class Meta:
        model = CustomField
        fields = ["label_zh", "label_en", "key", "kind", "choices", "required", "position"]
        help_texts = {
            "key": _(
                "Used by imports, the API, segments and message variables. Lowercase letters, digits and _; "
                "suggested from the English label; it cannot be changed later."
            ),
            "required": _("New and edited contacts must have a value; existing contacts are not affected."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["key"].required = False
        self.fields["key"].widget.attrs.update({"placeholder": "favourite_colour", "autocomplete": "off"})

    def clean_key(self):
        key = (self.cleaned_data.get("key") or "").strip()
        if not key:
            return key  # suggested in clean() once the English label is known
        if not KEY_PATTERN.match(key):
            raise forms.ValidationError(
                _(
                    "Use lowercase letters, digits and single underscores, starting with a letter (e.g. vip_level)."
                )
            )
        return key

    def clean(self):
        data = super().clean()
        if not data.get("key") and data.get("label_en") and "key" not in self.errors:
            data["key"] = suggest_key(data["label_en"])
            self.instance.key = data["key"]
        self._check_options_for(data.get("kind"))
        return data


class CustomFieldEditForm(_FieldFormMixin, forms.ModelForm):
    """Labels, options, required and position. The key and type never change."""

    choices = CustomFieldCreateForm.base_fields["choices"]

    class Meta:
        model = CustomField
        fields = ["label_zh", "label_en", "choices", "required", "position"]
        help_texts = CustomFieldCreateForm.Meta.help_texts

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["choices"] = "\n".join(self.instance.choices or [])
        if self.instance.kind not in CHOICE_KINDS:
            del self.fields["choices"]

    def clean(self):
        data = super().clean()
        self._check_options_for(self.instance.kind)
        return data


class PurgeForm(forms.Form):
    confirm_key = forms.CharField(label=_("Type the field key to confirm"), max_length=KEY_MAX)
