"""The browser's door into the event pipeline: an operator records an order, refund or visit by hand."""

import json
import uuid

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from .events import EventIn, events_record, validate_event_fields
from .models import EventKind, EventSource
from .selectors import contact_for_user

# What a person records by hand; the rest arrive from the API, imports and WeCom.
MANUAL_KINDS = [EventKind.PURCHASE, EventKind.REFUND, EventKind.CHECK_IN, EventKind.REFERRAL]


class RecordEventForm(forms.Form):
    kind = forms.ChoiceField(
        label=gettext_lazy("What happened"), choices=[(k.value, k.label) for k in MANUAL_KINDS]
    )
    occurred_at = forms.DateTimeField(
        label=gettext_lazy("When"),
        input_formats=["%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    amount = forms.DecimalField(
        label=gettext_lazy("Amount (¥)"), required=False, max_digits=12, decimal_places=2
    )
    order_id = forms.CharField(label=gettext_lazy("Order ID"), required=False, max_length=64)
    # Rendered with the form: a double-clicked submit posts the same key twice and records one event.
    key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        errors = validate_event_fields(
            kind=data["kind"], occurred_at=data["occurred_at"], amount=data.get("amount"),
            order_id=data.get("order_id", ""),
        )  # fmt: skip
        for name, message in errors.items():
            self.add_error(name if name in self.fields else None, message)
        return data


def blank_record_form() -> RecordEventForm:
    now = timezone.localtime().replace(second=0, microsecond=0)
    return RecordEventForm(initial={"kind": EventKind.PURCHASE, "occurred_at": now, "key": uuid.uuid4().hex})


@require_POST
def contact_event_add(request, pk):
    contact = contact_for_user(request.user, pk)
    if not request.user.has_perm("contacts.add_event"):
        raise PermissionDenied
    form = RecordEventForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        (outcome,) = events_record(
            events=[EventIn(
                contact_id=contact.pk, kind=data["kind"], occurred_at=data["occurred_at"],
                idempotency_key=f"ui:{data['key']}", amount=data.get("amount"), order_id=data.get("order_id", ""),
                payload={"recorded_by": request.user.pk},
            )],
            source=EventSource.UI,
        )  # fmt: skip
        if outcome.error:
            form.add_error(None, outcome.error)
    if not request.htmx:
        if form.errors:
            messages.error(request, " ".join(str(e) for errs in form.errors.values() for e in errs))
        else:
            messages.success(request, _("Recorded. The totals update in a moment."))
        return redirect("contact_detail", pk=contact.pk)
    ctx = {"contact": contact, "record_form": form if form.errors else blank_record_form()}
    response = render(request, "contacts/_record_event.html", ctx)
    if not form.errors:
        message = _("Recorded. The totals update in a moment.")
        response["HX-Trigger"] = json.dumps(
            {"toast": {"message": message, "level": "success"}, "timeline-changed": True}
        )
    return response
