"""enrollments_start's candidate sources: Python pairs and a queryset of contact ids (a segment's members)."""

import pytest
from django.db import connection

from contacts.models import Contact
from segments.models import Segment, SegmentMembership
from sop.enrollment import enrollments_start, queryset_source
from sop.models import Enrollment, Touchpoint
from tests.conftest import need_service

from .helpers import make_template


def test_queryset_source_enrolls_a_segments_members_with_the_key(contact, other_contact, operator):
    outsider = Contact.objects.create(name="王五", owner=operator)
    segment = Segment.objects.create(name="members", definition={})
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=segment, contact=c) for c in (contact, other_contact)]
    )
    template = make_template(steps=[{"day": 1}])
    members = SegmentMembership.objects.filter(segment=segment).values("contact_id")

    assert enrollments_start(template=template, source=queryset_source(members, "manual:segment")) == 2

    enrolled = Enrollment.objects.filter(template=template)
    assert set(enrolled.values_list("contact_id", "trigger_key")) == {
        (contact.pk, "manual:segment"),
        (other_contact.pk, "manual:segment"),
    }
    assert not enrolled.filter(contact=outsider).exists()
    assert Touchpoint.objects.filter(template=template).count() == 2


def explained(sql_part: str):
    """A context manager collecting the EXPLAIN of every statement that contains `sql_part`."""
    plans: list[str] = []

    def wrapper(execute, sql, params, many, context):
        if sql_part in sql and not sql.startswith("EXPLAIN"):
            with context["connection"].cursor() as cursor:
                cursor.execute("EXPLAIN " + sql, params)
                plans.append("\n".join(row[0] for row in cursor.fetchall()))
        return execute(sql, params, many, context)

    return plans, connection.execute_wrapper(wrapper)


@pytest.mark.django_db(transaction=True)
def test_first_enrollment_into_a_new_template_never_scans_the_enrollment_table_per_candidate(operator):
    """A new template enrolling a freshly filled segment after autovacuum saw the SOP tables empty: the
    re-entry anti-join was planned as "probe an empty table" — a sequential scan of sop_enrollment per
    candidate, which meets the statement's own new rows, so it grows quadratically (at 1M candidates the
    INSERT had not finished after 18 minutes; bench sop). A new template has nothing to re-enter: the
    statement must not read sop_enrollment at all."""
    if connection.vendor != "postgresql":
        need_service("the plan under test is PostgreSQL's")
    contacts = Contact.objects.bulk_create(
        [Contact(name=f"客户{i:05d}", owner=operator) for i in range(2000)], batch_size=1000
    )
    older, segment = (Segment.objects.create(name=name, definition={}) for name in ("older", "everyone"))
    SegmentMembership.objects.bulk_create([SegmentMembership(segment=older, contact=c) for c in contacts])
    with connection.cursor() as cursor:
        # What autovacuum leaves: empty SOP tables, and membership statistics from before the new segment's
        # first fill (so the planner expects it to have a handful of members).
        for table in ("sop_enrollment", "sop_touchpoint", "segments_segmentmembership"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    SegmentMembership.objects.bulk_create([SegmentMembership(segment=segment, contact=c) for c in contacts])
    template = make_template(steps=[{"day": 1}])
    members = SegmentMembership.objects.filter(segment=segment).values("contact_id")

    plans, explaining = explained("INSERT INTO sop_enrollment")
    with explaining:
        enrolled = enrollments_start(template=template, source=queryset_source(members, "manual:all"))

    assert enrolled == len(contacts) == Touchpoint.objects.filter(template=template).count()
    assert len(plans) == 1 and "Seq Scan on sop_enrollment" not in plans[0], plans


def test_enrolling_an_empty_selection_enrolls_nobody_without_an_error(db):
    from contacts.models import Contact
    from sop.enrollment import enrollments_start, queryset_source
    from sop.models import Enrollment

    from .helpers import make_template

    template = make_template(steps=[{"day": 0, "at": "10:00"}])
    for nobody in (
        Contact.objects.none(),
        Contact.objects.filter(pk__in=[]),
        Contact.objects.filter(name="无人"),
    ):
        source = queryset_source(nobody.values("id"), "manual:empty")
        assert enrollments_start(template=template, source=source) == 0
    assert not Enrollment.objects.exists()
