import json
from io import StringIO

from django.core.management import call_command
from django.db.models import Count, Max

from contacts.models import Contact, ContactTag, Event
from contacts.phones import normalise_phone
from scrm.bench.data import FILTER_TAG, PHONE_END, PHONE_PREFIX, build_dataset, display_phone
from scrm.bench.runner import Result, format_table, report
from scrm.bench.scenarios import SCENARIOS

CONTACT_LIST_MEASUREMENTS = ["list_first_page", "list_tag_filter", "list_phone_search", "list_cursor_page4"]


def bench_contacts():
    return Contact.objects.filter(phone__gte=PHONE_PREFIX, phone__lt=PHONE_END)


def data_counts() -> tuple[int, int, int]:
    return Contact.objects.count(), Event.objects.count(), ContactTag.objects.count()


def test_builder_makes_the_data_set(db):
    dataset = build_dataset(40)
    assert dataset.created == 40
    contacts, events, tag_rows = data_counts()
    assert bench_contacts().count() == contacts == 40
    assert 5 * 40 <= events <= 15 * 40  # ~10 per contact
    assert 30 <= tag_rows <= 90  # ~1.5 per contact
    assert max(Contact.objects.annotate(n=Count("tags")).values_list("n", flat=True)) <= 3
    assert ContactTag.objects.filter(tag_id=dataset.filter_tag_id).first().tag.name == FILTER_TAG[1]
    assert bench_contacts().filter(phone=dataset.sample_phone).exists()


def test_builder_data_is_consistent(db):
    build_dataset(40)
    for phone in Contact.objects.values_list("phone", flat=True):
        assert normalise_phone(phone) == phone
    for contact in Contact.objects.annotate(latest=Max("events__occurred_at")):
        assert contact.last_active_at == contact.latest  # both None for a contact never active


def test_builder_reuses_a_data_set_of_the_same_size(db):
    build_dataset(40)
    before = data_counts()
    again = build_dataset(40)
    assert again.created == 0
    assert data_counts() == before


def test_builder_extends_and_cuts_back(db):
    build_dataset(20)
    assert build_dataset(30).created == 10
    assert bench_contacts().count() == 30
    build_dataset(10)
    assert data_counts()[0] == 10
    assert not Event.objects.exclude(contact__in=bench_contacts()).exists()


def test_cutting_back_also_removes_rows_other_apps_keep_per_contact(db):
    """Contacts are deleted in SQL, not through Django's cascade: every table pointing at them must follow."""
    from segments.models import Segment, SegmentChange, SegmentMembership

    build_dataset(20)
    segment = Segment.objects.create(name="all")
    for contact in bench_contacts():
        SegmentMembership.objects.create(segment=segment, contact=contact)
        SegmentChange.objects.create(segment=segment, contact=contact, change="entered")
    build_dataset(5)
    assert SegmentMembership.objects.count() == SegmentChange.objects.count() == 5
    assert set(SegmentMembership.objects.values_list("contact_id", flat=True)) == set(
        bench_contacts().values_list("id", flat=True)
    )


def test_display_phone_is_what_people_type():
    assert display_phone("+8613000500000") == "130 0050 0000"
    assert normalise_phone(display_phone("+8613000500000")) == "+8613000500000"


def test_table_and_json_report():
    results = [Result("plain", 12.345), Result("with_baseline", 20.0, baseline_ms=5.0, per_s=123.0)]
    table = format_table(results)
    assert "plain" in table and "12.35" in table
    assert "4.00" in table  # ratio 20 / 5
    assert report("x", 7, results)["results"][0] == {
        "name": "plain",
        "median_ms": 12.345,
        "baseline_ms": None,
        "per_s": None,
    }


def test_bench_contacts_command_writes_json(db, tmp_path, settings):
    assert "contacts" in SCENARIOS
    # list_cursor_page4 needs a fourth page: four full pages of contacts (the list shows 50 a page).
    contacts = 4 * settings.CONTACT_PAGE_SIZE
    path = tmp_path / "bench.json"
    out = StringIO()
    call_command(
        "bench", "contacts", "--contacts", str(contacts), "--json", str(path), "--runs", "2", stdout=out
    )
    data = json.loads(path.read_text())
    assert data["scenario"] == "contacts"
    assert data["contacts"] == contacts
    assert [result["name"] for result in data["results"]] == CONTACT_LIST_MEASUREMENTS
    for result in data["results"]:
        assert set(result) == {"name", "median_ms", "baseline_ms", "per_s"}
        assert result["median_ms"] > 0
        assert result["baseline_ms"] is None and result["per_s"] is None
    assert all(name in out.getvalue() for name in CONTACT_LIST_MEASUREMENTS)
