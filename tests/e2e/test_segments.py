"""The segment builder in a real browser: build a three-condition rule and watch the live count follow each
change, save it, and find its members on its page."""

import pytest
from playwright.sync_api import expect

from contacts.models import Contact, Tag, TagGroup, Tier
from segments.models import Segment, SegmentMembership

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def settled(page):
    """Wait until htmx has swapped and wired up the redrawn rule tree (its listeners attach as it settles; a
    script faster than any person could otherwise change a control before htmx listens to it)."""
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling")).to_have_count(0)


def test_manager_builds_a_three_condition_segment_and_watches_the_count(page, login, manager, operator):
    taste = TagGroup.objects.create(name="口味偏好")
    spicy = Tag.objects.create(group=taste, name="辣", colour="#dc3545")
    gold = Tier.objects.create(name="金卡", rank=3, colour="#c9a227")
    silver = Tier.objects.create(name="银卡", rank=2, colour="#8d99ae")
    people = {
        "上海金卡辣": Contact.objects.create(name="上海金卡辣", city="上海", tier=gold, owner=operator),
        "上海金卡": Contact.objects.create(name="上海金卡", city="上海", tier=gold, owner=operator),
        "上海银卡辣": Contact.objects.create(name="上海银卡辣", city="上海", tier=silver, owner=operator),
        "北京金卡辣": Contact.objects.create(name="北京金卡辣", city="北京", tier=gold, owner=operator),
    }
    for name in ("上海金卡辣", "上海银卡辣", "北京金卡辣"):
        people[name].tags.add(spicy)

    login("manager")
    page.goto("/segments/")
    page.get_by_test_id("new-segment").click()
    expect(page.get_by_test_id("preview-hint")).to_be_visible()
    count = page.get_by_test_id("preview-count")

    # 1. Tags: has any of 辣 -> 3.
    page.get_by_test_id("tag-picker-n-0").click()
    page.get_by_label("辣").check()
    expect(count).to_have_text("3")
    expect(page.get_by_test_id("tag-picker-n-0")).to_have_text("辣")

    # 2. A tier condition: tier is one of 金卡 -> 2.
    page.get_by_test_id("add-condition-n").click()
    condition = page.get_by_test_id("condition-n-1")
    expect(condition).to_be_visible()
    settled(page)
    condition.get_by_label("Condition type").select_option("tier")
    expect(condition.get_by_text("金卡")).to_be_visible()
    settled(page)
    condition.get_by_text("金卡").click()
    expect(count).to_have_text("2")

    # 3. A field condition: city is 上海 -> 1. A wrong value first shows an inline error on that condition.
    page.get_by_test_id("add-condition-n").click()
    city = page.get_by_test_id("condition-n-2")
    expect(city).to_be_visible()
    settled(page)
    city.get_by_label("Condition type").select_option("field")
    expect(city.get_by_label("Field")).to_be_visible()
    settled(page)
    city.get_by_label("Field").select_option("order_count")
    expect(city.get_by_label("Operator")).to_have_value("eq")
    settled(page)
    city.get_by_label("Value").fill("lots")
    expect(page.locator("#err-n-2")).to_contain_text("whole number")
    expect(page.get_by_test_id("preview-error")).to_be_visible()
    city.get_by_label("Field").select_option("city")
    expect(city.get_by_label("Operator")).to_have_value("equals")  # a new field starts afresh
    settled(page)
    city.get_by_label("Value").fill("上海")
    expect(count).to_have_text("1")
    expect(page.locator("#err-n-2")).to_be_empty()
    expect(page.get_by_test_id("preview-sample")).to_contain_text("上海金卡辣")
    expect(page.get_by_test_id("preview-words")).to_contain_text("city is “上海”")

    page.get_by_label("Name").fill("上海金卡爱吃辣")
    page.get_by_test_id("save-segment").click()
    expect(page.get_by_test_id("segment-name")).to_contain_text("上海金卡爱吃辣")
    segment = Segment.objects.get(name="上海金卡爱吃辣")
    assert len(segment.definition["children"]) == 3
    # The refresh runs on the worker (eager here): the page shows the member once it is done.
    expect(page.get_by_test_id("segment-size")).to_have_text("1")
    expect(page.locator("#results")).to_contain_text("上海金卡辣")
    assert list(
        SegmentMembership.objects.filter(segment=segment).values_list("contact__name", flat=True)
    ) == ["上海金卡辣"]

    # Edit -> the same three conditions come back, and removing one widens the count again.
    page.get_by_test_id("edit-segment").click()
    expect(page.locator(".rule-condition")).to_have_count(3)
    expect(count).to_have_text("1")
    settled(page)
    page.get_by_test_id("condition-n-1").get_by_label("Remove this condition").click()
    expect(page.locator(".rule-condition")).to_have_count(2)
    expect(count).to_have_text("2")
    assert page.js_errors == []
