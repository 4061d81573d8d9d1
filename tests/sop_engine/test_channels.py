"""The outside channels against local servers speaking the real protocols (tests/sop_engine/servers.py):
webhook over HTTP (retries with exponential backoff, signature, idempotency key, timeouts, 5xx and 4xx
failures) and email over SMTP (aiosmtpd). Time is driven with time-machine; the dispatcher and the
sender are the real ones, and Celery runs eagerly (conftest), so dispatch_due sends right after its claim."""

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import translation

from contacts.models import Contact
from sop.channels import get_channel
from sop.dispatch import dispatch_due, idempotency_key
from sop.models import Delivery, Enrollment, SkipReason, Touchpoint, TouchStatus

from .helpers import enroll, make_template
from .servers import SmtpReceiver, WebhookReceiver

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)  # a Tuesday morning: no quiet hours
SECRET = "a-signing-secret-of-some-length"
WEBHOOK = get_channel("webhook")


def webhook_template(url: str, *, then_task=True):
    steps = [{"day": 0, "at": "10:00", "channel": "webhook", "channel_config": {"url": url, "secret": SECRET},
              "content": "{{ contact.name }}，欢迎"}]  # fmt: skip
    if then_task:
        steps.append({"hours": 1})
    return make_template(steps=steps)


def first_touchpoint(template) -> Touchpoint:
    return Touchpoint.objects.get(template=template, step__position=1)


def drive(traveller, touchpoint: Touchpoint, *, rounds: int) -> list[tuple[datetime, datetime]]:
    """Dispatch, then travel to the touchpoint's next due time, `rounds` times; returns (dispatched at, next
    due) for every round that left it scheduled again."""
    retries = []
    for _ in range(rounds):
        dispatched_at = datetime.now(tz=SHANGHAI)
        dispatch_due()
        touchpoint.refresh_from_db()
        if touchpoint.status != TouchStatus.SCHEDULED:
            break
        retries.append((dispatched_at, touchpoint.due_at))
        traveller.move_to(touchpoint.due_at)
    return retries


def waits(retries) -> list[float]:
    return [(due - at).total_seconds() for at, due in retries]


def test_webhook_retries_with_backoff_then_delivers_signed_with_one_key(contact):
    with WebhookReceiver(codes=[500, 500, 200]) as hook, time_machine.travel(T0, tick=False) as traveller:
        template = webhook_template(hook.url)
        enroll(template, contact)
        touchpoint = first_touchpoint(template)
        retries = drive(traveller, touchpoint, rounds=5)

    assert touchpoint.status == TouchStatus.DELIVERED and touchpoint.error == ""
    deliveries = list(Delivery.objects.filter(touchpoint=touchpoint).order_by("attempt"))
    assert [(d.attempt, d.status, d.response_code) for d in deliveries] == [
        (1, "retry", 500),
        (2, "retry", 500),
        (3, "ok", 200),
    ]
    # Exponential backoff: the n-th retry waits base × 2^(n-1).
    base = WEBHOOK.retry_base_seconds
    assert waits(retries) == [base, 2 * base]
    assert len(hook.requests) == 3
    key = idempotency_key(touchpoint.pk)
    assert {d.idempotency_key for d in deliveries} == {key}
    assert hook.keys() == {key: 3}
    for request in hook.requests:
        expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request.headers["X-SCRM-Signature"], expected)
        wrong = "sha256=" + hmac.new(b"another-secret-entirely", request.body, hashlib.sha256).hexdigest()
        assert request.headers["X-SCRM-Signature"] != wrong
    payload = json.loads(hook.requests[-1].body)
    assert payload["text"] == f"{contact.name}，欢迎" and payload["contact"]["id"] == contact.pk
    # Delivered: the sequence goes on (the next step counts from the real send).
    second = Touchpoint.objects.get(template=template, step__position=2)
    assert second.due_at == touchpoint.sent_at + timedelta(hours=1)


@pytest.fixture
def english():
    """The reason is written in the worker's language; these expectations are in English."""
    with translation.override("en"):
        yield


@pytest.mark.parametrize(
    ("codes", "delay", "reason"),
    [([500], 0.0, "HTTP 500: status 500"), ([200], 1.5, "No answer within 0.3 s")],
    ids=["always-500", "timeout"],
)
def test_webhook_fails_after_max_attempts_with_the_reason_and_the_sequence_goes_on(
    contact, settings, codes, delay, reason, english
):
    settings.SOP_WEBHOOK_TIMEOUT_SECONDS = 0.3
    attempts = WEBHOOK.max_attempts
    with WebhookReceiver(codes=codes, delay=delay) as hook, time_machine.travel(T0, tick=False) as traveller:
        template = webhook_template(hook.url)
        enroll(template, contact)
        touchpoint = first_touchpoint(template)
        retries = drive(traveller, touchpoint, rounds=attempts + 2)
        failed_at = datetime.now(tz=SHANGHAI)

    assert touchpoint.status == TouchStatus.FAILED
    assert touchpoint.error == reason and touchpoint.finished_at == failed_at
    statuses = list(
        Delivery.objects.filter(touchpoint=touchpoint).order_by("attempt").values_list("attempt", "status")
    )
    assert statuses == [(n, "retry") for n in range(1, attempts)] + [(attempts, "failed")]
    assert len(hook.requests) == attempts and hook.keys() == {idempotency_key(touchpoint.pk): attempts}
    base = WEBHOOK.retry_base_seconds
    assert waits(retries) == [base * 2**n for n in range(attempts - 1)]
    second = Touchpoint.objects.get(template=template, step__position=2)
    assert second.status == TouchStatus.SCHEDULED and second.due_at == failed_at + timedelta(hours=1)
    assert Enrollment.objects.get(template=template).status == Enrollment.Status.ACTIVE


def test_webhook_4xx_fails_at_once(contact):
    with WebhookReceiver(codes=[400, 200]) as hook, time_machine.travel(T0, tick=False) as traveller:
        template = webhook_template(hook.url, then_task=False)
        enroll(template, contact)
        touchpoint = first_touchpoint(template)
        retries = drive(traveller, touchpoint, rounds=3)

    assert retries == [] and len(hook.requests) == 1
    assert touchpoint.status == TouchStatus.FAILED and touchpoint.error.startswith("HTTP 400")
    delivery = Delivery.objects.get(touchpoint=touchpoint)
    assert (delivery.attempt, delivery.status, delivery.response_code) == (1, "failed", 400)
    # Its only step is done with (failed): the enrollment completes.
    assert Enrollment.objects.get(template=template).status == Enrollment.Status.COMPLETED


@pytest.fixture
def smtp(settings):
    with SmtpReceiver() as receiver:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = receiver.host, receiver.port
        settings.EMAIL_USE_TLS, settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = False, "", ""
        yield receiver


def test_email_arrives_over_smtp_with_subject_body_and_the_key_as_message_id(contact, other_contact, smtp):
    Contact.objects.filter(pk=contact.pk).update(email="zhangsan@example.com")
    with time_machine.travel(T0, tick=True):
        step = {"day": 0, "at": "10:00", "channel": "email", "channel_config": {"subject": "欢迎加入"},
                "content": "{{ contact.name }}，感谢关注！"}  # fmt: skip
        template = make_template(steps=[step])
        enroll(template, contact, other_contact)
        stats = dispatch_due()

    assert stats.sending == 1 and stats.skipped == 1
    mailed = Touchpoint.objects.get(contact=contact)
    assert mailed.status == TouchStatus.DELIVERED
    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["Subject"] == "欢迎加入"
    assert message["To"] == "zhangsan@example.com"
    assert message.get_content().strip() == f"{contact.name}，感谢关注！"
    assert message["Message-ID"] == f"<{idempotency_key(mailed.pk)}@localhost>"
    assert smtp.collector.envelopes[0].rcpt_tos == ["zhangsan@example.com"]
    assert Delivery.objects.get(touchpoint=mailed).status == "ok"
    # The contact without an email is skipped with the reason, and nothing was sent for them.
    skipped = Touchpoint.objects.get(contact=other_contact)
    assert (skipped.status, skipped.reason) == (TouchStatus.SKIPPED, SkipReason.NO_ADDRESS)
    assert not Delivery.objects.filter(touchpoint=skipped).exists()
