"""Order/event import: contact lookup, idempotency keys, per-row errors, totals after the pipeline."""

import csv
import io
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation

from contacts.imports import import_create, import_run, import_set_mapping, import_start
from contacts.models import Contact, Event, EventKind, JobStatus
from scrm.pipeline import process_pending_events

HEADER = "手机号,类型,时间,金额,订单号\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def english():
    """The reports are asserted word for word; the default language is Chinese."""
    with translation.override("en"):
        yield


def run_import(actor, content: str):
    job = import_create(actor=actor, upload=SimpleUploadedFile("orders.csv", content.encode()), kind="events")
    assert import_set_mapping(job=job, mapping=job.mapping) == []
    assert import_start(job=job)
    import_run(job_id=job.pk)
    job.refresh_from_db()
    return job


def reasons(job) -> list[tuple[str, str]]:
    if not job.error_file:
        return []
    with job.error_file.open("rb") as fh:
        rows = list(csv.reader(io.StringIO(fh.read().decode("utf-8-sig"))))
    return [(row[0], row[-1]) for row in rows[1:]]


@pytest.fixture
def buyers(db, operator):
    return (
        Contact.objects.create(name="甲", phone="+8613800000001", owner=operator),
        Contact.objects.create(name="乙", phone="+8613800000002", email="yi@example.com", owner=operator),
    )


ORDERS = (
    HEADER
    + "13800000001,purchase,2024-05-01 10:00,100.50,A1\n"  # 2
    + "13800000001,购买,2024-05-02 11:00,50,A2\n"  # 3
    + "13800000002,purchase,2024-05-03,20,B1\n"  # 4
    + "13800000001,refund,2024-05-04 09:00,50,A2\n"  # 5 refunds A2
    + "13800000001,check_in,2024-05-05 09:00,,\n"  # 6 no order id: content key
    + "13899999999,purchase,2024-05-06,10,C1\n"  # 7 unknown contact
    + "13800000002,purchase,2024-05-07,-5,B2\n"  # 8 negative amount
    + "13800000002,dance,2024-05-08,,\n"  # 9 unknown kind
    + "13800000002,purchase,2099-01-01,5,B3\n"  # 10 far future
    + "13800000002,purchase,2024-02-30,5,B4\n"  # 11 impossible date
    + "13800000002,refund,2024-05-09,5,ZZ\n"  # 12 refund of an unknown order
)


def test_event_import_records_events_and_reports_bad_rows(admin_user, buyers):
    job = run_import(admin_user, ORDERS)
    assert (job.status, job.created_count, job.unchanged_count, job.failed_count) == (JobStatus.DONE, 5, 0, 6)
    assert reasons(job) == [
        ("7", "No contact with this external user ID, phone or email."),
        ("8", "The amount cannot be negative."),
        ("9", f"Unknown event kind “dance”. Known kinds: {', '.join(EventKind.values)}."),
        ("10", "The time is in the future."),
        ("11", "Time “2024-02-30” is not a valid date and time."),
        ("12", "No purchase with order ID “ZZ” to refund."),
    ]  # fmt: skip
    purchase = Event.objects.get(order_id="A1", kind="purchase")
    assert purchase.idempotency_key == "order:purchase:A1"
    assert purchase.amount == Decimal("100.50") and purchase.source == "import"
    assert str(purchase.occurred_at.astimezone().date()) == "2024-05-01"


def test_totals_are_exact_after_the_pipeline_and_reimport_is_a_no_op(admin_user, buyers):
    first, second = buyers
    run_import(admin_user, ORDERS)
    process_pending_events()
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.order_count, first.total_spent) == (1, Decimal("100.50"))  # A2 refunded
    assert (second.order_count, second.total_spent) == (1, Decimal("20.00"))
    events = Event.objects.count()
    again = run_import(admin_user, ORDERS)
    assert (again.created_count, again.unchanged_count, again.failed_count) == (0, 5, 6)
    assert Event.objects.count() == events
    process_pending_events()
    first.refresh_from_db()
    assert (first.order_count, first.total_spent) == (1, Decimal("100.50"))


def test_contact_found_by_email_and_manager_scope(manager, buyers, other_operator, django_user_model):
    outsider = django_user_model.objects.create_user(username="outsider", password="x")
    Contact.objects.create(name="外", phone="+8613800000009", owner=outsider)
    content = "邮箱,手机号,kind,occurred_at,amount\nyi@example.com,,purchase,2024-05-01,9.9\n,13800000009,purchase,2024-05-01,1\n"
    job = run_import(manager, content)
    assert (job.created_count, job.failed_count) == (1, 1)
    assert reasons(job) == [("3", "No contact with this external user ID, phone or email.")]
    assert Event.objects.get().contact == buyers[1]


def test_events_mapping_needs_kind_and_time(admin_user):
    job = import_create(
        actor=admin_user, upload=SimpleUploadedFile("o.csv", "手机号,金额\n1,2\n".encode()), kind="events"
    )
    assert import_set_mapping(job=job, mapping=job.mapping) == [
        "Choose the column for “Event kind”.",
        "Choose the column for “Occurred at”.",
    ]


def test_preview_shows_events_as_they_will_be_saved(admin_user, buyers):
    from contacts.imports import import_preview

    job = import_create(
        actor=admin_user,
        upload=SimpleUploadedFile(
            "o.csv", (HEADER + '138 0000 0001,购买,2024-05-01 10:00,"￥1,200.50",A1\n').encode()
        ),
        kind="events",
    )
    (row,) = import_preview(job=job)
    assert row.status == "created", row.reason
    # Times are read and shown in the importer's time zone (Asia/Shanghai by default).
    assert row.saved == {
        "phone": "+8613800000001", "kind": "Purchase", "occurred_at": "2024-05-01 10:00", "amount": "¥1200.50",
        "order_id": "A1",
    }  # fmt: skip
    assert not Event.objects.exists()
