"""Forms validate input; accounts.services does the writing (and re-checks every rule)."""

from datetime import datetime
from zoneinfo import ZoneInfo

from crispy_bootstrap5.bootstrap5 import Switch
from crispy_forms.helper import FormHelper
from crispy_forms.layout import HTML, Column, Layout, Row
from django import forms
from django.contrib.auth.password_validation import password_validators_help_text_html, validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .models import User, validate_time_zone
from .roles import ROLE_LABELS, Role, role_of
from .selectors import NO_ROLE, managers, username_taken

# Offered in every time zone select, China first; any other IANA zone is still accepted.
COMMON_TIME_ZONES = [
    ("Asia/Shanghai", _("China (Beijing, Shanghai)")),
    ("Asia/Hong_Kong", _("Hong Kong")),
    ("Asia/Macau", _("Macau")),
    ("Asia/Taipei", _("Taipei")),
    ("Asia/Singapore", _("Singapore")),
    ("Asia/Kuala_Lumpur", _("Kuala Lumpur")),
    ("Asia/Bangkok", _("Bangkok")),
    ("Asia/Ho_Chi_Minh", _("Ho Chi Minh City")),
    ("Asia/Jakarta", _("Jakarta")),
    ("Asia/Manila", _("Manila")),
    ("Asia/Seoul", _("Seoul")),
    ("Asia/Tokyo", _("Tokyo")),
    ("Asia/Kolkata", _("India (Kolkata)")),
    ("Asia/Dubai", _("Dubai")),
    ("Europe/Moscow", _("Moscow")),
    ("Europe/Berlin", _("Berlin")),
    ("Europe/Paris", _("Paris")),
    ("Europe/London", _("London")),
    ("UTC", _("Coordinated Universal Time (UTC)")),
    ("America/Sao_Paulo", _("São Paulo")),
    ("America/New_York", _("New York")),
    ("America/Chicago", _("Chicago")),
    ("America/Denver", _("Denver")),
    ("America/Los_Angeles", _("Los Angeles")),
    ("America/Vancouver", _("Vancouver")),
    ("Australia/Sydney", _("Sydney")),
    ("Pacific/Auckland", _("Auckland")),
]

ROLE_DESCRIPTIONS = {
    Role.OPERATOR: _("works the contacts they own"),
    Role.MANAGER: _("sees their team's contacts, dashboards and exports"),
    Role.ADMIN: _("configures the system and manages users"),
}


ROLE_CHOICES = (Role.OPERATOR, Role.MANAGER, Role.ADMIN)


def _role_choice_label(role: Role) -> str:
    template = "{} <span class='text-body-secondary small'>— {}</span>"
    return format_html(template, ROLE_LABELS[role], ROLE_DESCRIPTIONS[role])


def _utc_offset(zone: str) -> str:
    minutes = int(datetime.now(ZoneInfo(zone)).utcoffset().total_seconds() // 60)
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{'+' if minutes >= 0 else '-'}{hours:02d}:{rest:02d}"


def time_zone_choices(current: str | None = None) -> list[tuple[str, str]]:
    """Common zones labelled with today's UTC offset; a user's uncommon zone is kept in the list."""
    choices = [(zone, f"{label} ({_utc_offset(zone)})") for zone, label in COMMON_TIME_ZONES]
    if current and current not in dict(COMMON_TIME_ZONES):
        try:
            validate_time_zone(current)
        except ValidationError:
            return choices
        choices.append((current, f"{current} ({_utc_offset(current)})"))
    return choices


class TimeZoneField(forms.ChoiceField):
    """A select of common zones; any zone accounts.models.validate_time_zone knows is valid."""

    default_validators = [validate_time_zone]

    def __init__(self, **kwargs):
        kwargs.setdefault("label", _("Time zone"))
        kwargs.setdefault("help_text", _("Dates and times in the app are shown in this zone."))
        super().__init__(choices=time_zone_choices, **kwargs)

    def valid_value(self, value):
        return True  # validate_time_zone decides, with a message naming the value


class ManagerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        if obj.display_name:
            return f"{obj.display_name} ({obj.username})"
        return obj.username


def _section(title, *, first: bool = False) -> HTML:
    css = "h6 text-uppercase text-body-secondary fw-semibold border-bottom pb-2 mb-3"
    return HTML(format_html('<h2 class="{} {}">{}</h2>', css, "mt-0" if first else "mt-4", title))


def _no_form_tag(layout: Layout) -> FormHelper:
    helper = FormHelper()
    helper.form_tag = False
    helper.disable_csrf = True
    helper.layout = layout
    return helper


class ProfileForm(forms.Form):
    display_name = forms.CharField(
        label=_("Display name"), max_length=100, required=False,
        help_text=_("How colleagues see you; your username is shown when this is empty."),
    )  # fmt: skip
    email = forms.EmailField(label=_("Email"), required=False)
    time_zone = TimeZoneField()

    def __init__(self, *args, user: User, **kwargs):
        kwargs.setdefault(
            "initial", {"display_name": user.display_name, "email": user.email, "time_zone": user.time_zone}
        )
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = time_zone_choices(user.time_zone)
        self.helper = _no_form_tag(Layout("display_name", "email", "time_zone"))


class UserForm(forms.Form):
    """Create (with an initial password) and edit (with the active flag and an optional new password)."""

    username = forms.CharField(
        label=_("Username"), max_length=150, validators=[UnicodeUsernameValidator()],
        help_text=_("Used to sign in. Letters, digits and @ . + - _ only."),
    )  # fmt: skip
    display_name = forms.CharField(
        label=_("Display name"), max_length=100, required=False,
        help_text=_("Shown to colleagues, e.g. 李娜."),
    )  # fmt: skip
    email = forms.EmailField(label=_("Email"), required=False)
    time_zone = TimeZoneField()
    role = forms.ChoiceField(label=_("Role"), widget=forms.RadioSelect)
    manager = ManagerChoiceField(
        label=_("Manager"), queryset=User.objects.none(), required=False, empty_label=_("— No manager —"),
        help_text=_("Operators belong to their manager's team. An operator without a manager is on no team, "
                    "so no manager sees their contacts."),
        error_messages={"invalid_choice": _("Choose an active user with the Manager role.")},
    )  # fmt: skip
    is_active = forms.BooleanField(
        label=_("Active"), required=False,
        help_text=_("Inactive users cannot sign in. Their contacts and their team stay as they are."),
    )  # fmt: skip
    password = forms.CharField(
        label=_("Password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )  # fmt: skip
    password_confirm = forms.CharField(
        label=_("Confirm password"), strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )  # fmt: skip

    def __init__(self, *args, target: User | None = None, **kwargs):
        self.target = target
        if target is not None:
            kwargs.setdefault("initial", self._initial(target))
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [(role.value, _role_choice_label(role)) for role in ROLE_CHOICES]
        self.fields["time_zone"].choices = time_zone_choices(target.time_zone if target else None)
        self._limit_managers()
        if target is None:
            del self.fields["is_active"]
            self.initial.setdefault("role", Role.OPERATOR.value)
            self.initial.setdefault("time_zone", self.fields["time_zone"].choices[0][0])
            self.fields["password"].help_text = password_validators_help_text_html()  # in today's language
        else:
            self._optional_password()
        self.helper = _no_form_tag(self._layout())

    def _optional_password(self) -> None:
        password, confirm = self.fields["password"], self.fields["password_confirm"]
        password.required = confirm.required = False
        password.label, confirm.label = _("New password"), _("Confirm new password")
        keep = _("Leave both empty to keep the current password.")
        password.help_text = format_html("{}{}", keep, password_validators_help_text_html())

    @staticmethod
    def _initial(target: User) -> dict:
        role = role_of(target)
        return {
            "username": target.username, "display_name": target.display_name, "email": target.email,
            "time_zone": target.time_zone, "role": role.value if role else "", "manager": target.manager_id,
            "is_active": target.is_active,
        }  # fmt: skip

    def _limit_managers(self) -> None:
        """Active Managers; on edit also the current manager (a team keeps a manager who left)."""
        offered = Q(pk__in=managers().values("pk"))
        if self.target is not None and self.target.manager_id:
            offered |= Q(pk=self.target.manager_id)
        qs = User.objects.filter(offered)
        if self.target is not None:
            qs = qs.exclude(pk=self.target.pk)
        self.fields["manager"].queryset = qs.order_by("display_name", "username")

    def _layout(self) -> Layout:
        password_title = _("Set a new password") if self.target else _("Initial password")
        parts = [
            _section(_("Account"), first=True),
            Row(Column("username", css_class="col-md-6"), Column("display_name", css_class="col-md-6")),
            Row(Column("email", css_class="col-md-6"), Column("time_zone", css_class="col-md-6")),
            _section(_("Role and team")),
            "role",
            "manager",
        ]
        if self.target is not None:
            parts.append(Switch("is_active"))
        parts += [
            _section(password_title),
            Row(Column("password", css_class="col-md-6"), Column("password_confirm", css_class="col-md-6")),
        ]
        return Layout(*parts)

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        if username_taken(username, exclude_pk=self.target.pk if self.target else None):
            raise ValidationError(_("A user with that username already exists."), code="unique")
        return username

    def clean(self):
        cleaned = super().clean()
        password, confirm = cleaned.get("password"), cleaned.get("password_confirm")
        if (password or confirm) and password != confirm:
            self.add_error("password_confirm", _("The two passwords do not match."))
        if password:
            self._validate_password(password, cleaned)
        return cleaned

    def _validate_password(self, password: str, cleaned: dict) -> None:
        probe = User(
            username=cleaned.get("username", ""), email=cleaned.get("email", ""),
            display_name=cleaned.get("display_name", ""),
            first_name=getattr(self.target, "first_name", ""),
            last_name=getattr(self.target, "last_name", ""),
        )  # fmt: skip
        try:
            validate_password(password, probe)
        except ValidationError as exc:
            self.add_error("password", exc)

    def service_kwargs(self) -> dict:
        """The cleaned data as accounts.services.user_create / user_update take it."""
        data = {key: value for key, value in self.cleaned_data.items() if key != "password_confirm"}
        data["role"] = Role(data["role"])
        if self.target is not None:
            data["password"] = data["password"] or None
        return data


class UserFilterForm(forms.Form):
    """The user list's filters (GET). Unknown values are ignored."""

    q = forms.CharField(
        label=_("Search"), required=False, max_length=100,
        widget=forms.TextInput(attrs={"placeholder": _("Username, name or email"), "type": "search"}),
    )  # fmt: skip
    role = forms.ChoiceField(label=_("Role"), required=False)
    status = forms.ChoiceField(
        label=_("Status"), required=False,
        choices=[("", _("Any status")), ("active", _("Active")), ("inactive", _("Inactive"))],
    )  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [
            ("", _("All roles")),
            *[(role.value, ROLE_LABELS[role]) for role in ROLE_CHOICES],
            (NO_ROLE, _("No role")),
        ]

    def value(self, name: str) -> str:
        """The cleaned value, or "" when the field was invalid."""
        if not hasattr(self, "cleaned_data"):
            self.is_valid()
        return self.cleaned_data.get(name) or ""
