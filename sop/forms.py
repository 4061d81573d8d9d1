"""Forms of the SOP admin pages. They parse; the rules live in sop.services (the same for every door)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from contacts.models import Tag
from segments.selectors import segments_visible_to
from segments.static_forms import ContactIdsForm

from .channels import channel_choices
from .models import FUTURE_TRIGGERS, SopSettings, SopStep, SopTemplate

TIME_INPUT = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")


class TriggerSelect(forms.Select):
    """The trigger menu: triggers whose producing app does not exist yet are shown, disabled."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if value in FUTURE_TRIGGERS:
            option["attrs"]["disabled"] = True
            option["label"] = _("%(trigger)s · coming with the loyalty/churn app") % {"trigger": label}
        return option


def _tags():
    return Tag.objects.select_related("group").order_by("group__name", "name")


class TagChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.group.name} / {obj.name}"


class TemplateForm(forms.ModelForm):
    trigger_tag = TagChoiceField(queryset=Tag.objects.none(), required=False, label=_("Tag"))
    exit_tag = TagChoiceField(
        queryset=Tag.objects.none(), required=False, label=_("Exit when this tag is added")
    )

    class Meta:
        model = SopTemplate
        fields = [
            "name", "description", "priority", "trigger", "trigger_source", "trigger_tag", "trigger_segment",
            "trigger_event_kind", "trigger_first_only", "birthday_days_before", "audience", "reentry",
            "reentry_days", "cap_policy", "exit_on_purchase", "exit_on_reply", "exit_on_opt_out", "exit_tag",
            "exit_on_audience_left", "exit_goal_kind", "attribution_days",
        ]  # fmt: skip
        widgets = {
            "trigger": TriggerSelect,
            "description": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        segments = segments_visible_to(user).order_by("name")
        self.fields["trigger_segment"].queryset = segments
        self.fields["audience"].queryset = segments
        self.fields["trigger_tag"].queryset = _tags()
        self.fields["exit_tag"].queryset = _tags()
        self.fields["audience"].help_text = _("Only customers in this segment are enrolled (optional).")
        self.fields["priority"].help_text = _(
            "When two templates compete for one slot of the frequency cap, the higher wins."
        )
        self.fields["attribution_days"].help_text = _(
            "A reply or purchase within this many days of a touch counts as its result."
        )

    def _post_clean(self):
        # The service validates the whole template (its trigger rules need the user); the form only parses.
        pass


class StepForm(forms.ModelForm):
    channel = forms.ChoiceField(label=_("Channel"), choices=())
    config_subject = forms.CharField(label=_("Email subject"), required=False, max_length=300)
    config_url = forms.CharField(label=_("Webhook URL"), required=False, max_length=500)
    config_secret = forms.CharField(
        label=_("Signing secret"), required=False, max_length=200,
        help_text=_("At least 16 characters; the receiver checks the X-SCRM-Signature header with it."),
    )  # fmt: skip
    action_add_tag = TagChoiceField(
        queryset=Tag.objects.none(), required=False, label=_("When done, add tag")
    )
    jump_to = forms.TypedChoiceField(label=_("Jump to step"), coerce=int, required=False, empty_value=None)

    class Meta:
        model = SopStep
        fields = [
            "name", "offset_kind", "offset_days", "offset_time", "offset_hours", "channel", "content",
            "transactional", "action_add_tag", "reply_branch", "jump_to",
        ]  # fmt: skip
        widgets = {
            "content": forms.Textarea(attrs={"rows": 8, "data-variable-target": "1"}),
            "offset_time": TIME_INPUT,
        }

    def __init__(self, *args, template: SopTemplate, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = channel_choices()
        self.fields["action_add_tag"].queryset = _tags()
        others = template.steps.exclude(pk=self.instance.pk).order_by("position")
        self.fields["jump_to"].choices = [("", "—")] + [(s.position, str(s)) for s in others]
        self.fields["offset_days"].help_text = _("Day 0 is the day the customer enters, in their time zone.")
        self.fields["transactional"].help_text = _(
            "Order notices and the like: sent even to opted-out customers, ignoring the cap and quiet hours."
        )
        config = self.instance.channel_config or {}
        if not self.is_bound:
            self.initial |= {
                "config_subject": config.get("subject", ""),
                "config_url": config.get("url", ""),
            }
        self.current_secret = config.get("secret", "")
        if self.current_secret:
            self.fields["config_secret"].help_text = _("Leave empty to keep the current secret.")

    def _post_clean(self):
        pass

    def channel_config(self) -> dict:
        data = self.cleaned_data
        channel = data.get("channel")
        if channel == "email":
            return {"subject": (data.get("config_subject") or "").strip()}
        if channel == "webhook":
            secret = (data.get("config_secret") or "").strip() or self.current_secret
            return {"url": (data.get("config_url") or "").strip(), "secret": secret}
        return {}

    def service_data(self) -> dict:
        return {**self.cleaned_data, "channel_config": self.channel_config()}


class PreviewForm(forms.Form):
    content = forms.CharField(required=False, max_length=5000, strip=False)
    preview_contact = forms.IntegerField(required=False, min_value=1, max_value=2**62)


class SettingsForm(forms.ModelForm):
    class Meta:
        model = SopSettings
        fields = ["cap_per_day", "cap_per_week", "quiet_start", "quiet_end", "unsubscribe_text"]
        widgets = {"quiet_start": TIME_INPUT, "quiet_end": TIME_INPUT}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["quiet_end"].help_text = _("The same start and end means no quiet hours.")
        self.fields["unsubscribe_text"].help_text = _("Messages show it where they use {{ unsubscribe }}.")

    def _post_clean(self):
        pass


class EnrollSegmentForm(forms.Form):
    segment = forms.ModelChoiceField(queryset=None, label=_("Segment"))
    confirm = forms.BooleanField(required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["segment"].queryset = segments_visible_to(user).order_by("name")


class EnrollSelectionForm(ContactIdsForm):
    template = forms.ModelChoiceField(
        queryset=SopTemplate.objects.filter(active=True),
        label=_("SOP template"),
        error_messages={"required": _("Choose an active template."),
                        "invalid_choice": _("Choose an active template.")},
    )  # fmt: skip
