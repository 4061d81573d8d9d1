"""SOP fixtures: templates with steps, segments with members."""

import pytest
from django.utils import translation

from contacts.models import Contact
from segments.models import Segment, SegmentKind, SegmentMembership
from sop.models import SopStep, SopTemplate, Trigger


def add_step(template, position=None, **fields):
    position = position or (template.steps.count() + 1)
    values = {"name": f"第{position}步", "content": "{{ contact.name }}您好", "offset_days": position - 1}
    return SopStep.objects.create(template=template, position=position, **(values | fields))


@pytest.fixture
def sop_template(db, admin_user):
    template = SopTemplate.objects.create(name="新客欢迎", trigger=Trigger.MANUAL, created_by=admin_user)
    add_step(template)
    add_step(template)
    return template


@pytest.fixture
def segment(db, admin_user, contact, other_contact):
    seg = Segment.objects.create(
        name="金卡客户", kind=SegmentKind.STATIC, created_by=admin_user, member_count=2
    )
    SegmentMembership.objects.bulk_create(
        [
            SegmentMembership(segment=seg, contact=contact),
            SegmentMembership(segment=seg, contact=other_contact),
        ]
    )
    return seg


@pytest.fixture
def unowned_contact(db):
    return Contact.objects.create(name="公海客户", phone="+8613700137000")


@pytest.fixture(autouse=True)
def english():
    """Messages are compared in English (the default language is zh-hans once the catalog has them)."""
    with translation.override("en"):
        yield
