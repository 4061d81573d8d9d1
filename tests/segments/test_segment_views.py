"""Segment pages: the list, the builder (live count, inline errors, round trip), a segment with its members,
refresh, duplicate, share, delete, bulk actions on all members — and who may reach each."""

import re
from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from contacts.models import Contact, ContactTag, Event, TagGroup
from segments.builder import tree_from_form
from segments.models import Segment, SegmentBulkJob, SegmentMembership
from segments.rules import validate_tree
from segments.services import segment_refresh, segment_share

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def city_is(city: str) -> dict:
    return {"type": "group", "match": "all", "children": [
        {"type": "field", "field": "city", "op": "equals", "value": city}]}  # fmt: skip


@pytest.fixture
def people(operator, other_operator):
    return [
        Contact.objects.create(name="甲", city="上海", owner=operator),
        Contact.objects.create(name="乙", city="上海", owner=other_operator),
        Contact.objects.create(name="丙", city="北京", owner=operator),
    ]


@pytest.fixture
def shanghai(people, manager):
    segment = Segment.objects.create(name="上海客户", definition=city_is("上海"), created_by=manager)
    segment_refresh(segment_id=segment.pk)
    return segment


class FormFields(HTMLParser):
    """What a browser would submit from a page's form fields (inputs, checked boxes, selected options)."""

    def __init__(self):
        super().__init__()
        self.data = QueryDict(mutable=True)
        self._select = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("name") and "." in a["name"]:
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.data.appendlist(a["name"], a.get("value") or "")
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
        elif tag == "option" and self._select and "selected" in a:
            self.data.appendlist(self._select, a.get("value") or "")

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def submitted(html: str) -> QueryDict:
    parser = FormFields()
    parser.feed(html)
    return parser.data


# --- the builder round trip ------------------------------------------------------------------------

ROUND_TRIP = [
    city_is("上海"),
    {"type": "group", "match": "any", "children": [
        {"type": "field", "field": "total_spent", "op": "between", "value": ["100", "500.5"]},
        {"type": "field", "field": "last_active_at", "op": "more_than_days_ago", "value": 30},
        {"type": "field", "field": "gender", "op": "in", "value": ["female", "male"]},
        {"type": "field", "field": "opted_out", "op": "is_false"},
        {"type": "group", "match": "none", "children": [
            {"type": "events", "kind": "purchase", "measure": "sum", "op": "gte", "value": "200", "days": 90},
            {"type": "birthday_within", "days": 7},
            {"type": "group", "match": "all", "children": [{"type": "owner", "op": "is_empty"}]},
        ]},
    ]},
]  # fmt: skip


@pytest.mark.parametrize("tree", ROUND_TRIP)
def test_the_builder_round_trips_a_rule_exactly(role_client, tree):
    client = role_client("manager")
    response = client.post(reverse("segment_builder"), {"n.type": "group", **_flat(tree)})
    assert response.status_code == 200
    # What the browser sends back is the same rule once cleaned (the form carries numbers as text).
    assert validate_tree(tree_from_form(submitted(response.content.decode()))) == tree


def test_the_builder_round_trips_tags_tiers_people_and_segments(
    role_client, manager, operator, tier, tag, shanghai
):
    group = TagGroup.objects.create(name="来源")
    tree = {"type": "group", "match": "all", "children": [
        {"type": "tags", "op": "has_all", "tags": [tag.pk]},
        {"type": "tags", "op": "has_none", "group": group.pk},
        {"type": "tier", "op": "not_in", "tiers": [tier.pk]},
        {"type": "tier_rank", "min": 3, "max": None},
        {"type": "owner", "op": "in", "users": [operator.pk]},
        {"type": "team", "manager": manager.pk},
        {"type": "segment", "op": "in", "segment": shanghai.pk},
    ]}  # fmt: skip
    client = role_client("manager")
    edit = client.get(reverse("segment_create"))
    assert edit.status_code == 200 and "{#" not in edit.content.decode()  # no template comment leaks as text
    response = client.post(reverse("segment_builder"), _flat(tree))
    assert validate_tree(tree_from_form(submitted(response.content.decode()))) == tree


def _flat(tree: dict, nid: str = "n") -> dict:
    """A tree as the builder's form fields (what tree_from_form reads), for posting."""
    data = {f"{nid}.type": tree["type"]}
    if tree["type"] == "group":
        data[f"{nid}.match"] = tree["match"]
        for i, child in enumerate(tree["children"]):
            data |= _flat(child, f"{nid}-{i}")
        return data
    for key, value in tree.items():
        if key == "type":
            continue
        if key == "value" and isinstance(value, list) and tree.get("op") == "between":
            data[f"{nid}.value_from"], data[f"{nid}.value_to"] = value
        elif key == "group":
            data[f"{nid}.mode"], data[f"{nid}.group"] = "group", value
        elif value is not None:
            data[f"{nid}.{key}"] = value
    return data


# --- live count and inline errors ------------------------------------------------------------------


def test_preview_counts_only_the_contacts_the_user_sees(role_client, people):
    form = _flat(city_is("上海"))
    operator_view = role_client("operator").post(reverse("segment_preview"), form, **EN)
    assert _count(operator_view) == 1 and "Your customers" in operator_view.content.decode()
    manager_view = role_client("manager").post(reverse("segment_preview"), form, **EN)
    assert _count(manager_view) == 2
    assert "甲" in manager_view.content.decode() and "city is “上海”" in manager_view.content.decode()


def test_preview_counts_a_lone_event_rule_for_each_role(role_client, people):
    """An admin's count of "spent ≥ 200 in 90 days" comes from the grouped events (rule_count's shortcut);
    everyone else's from the compiled filter over the contacts they see. Both count the same buyers."""
    for n, (person, amount) in enumerate(zip(people, ["250.00", "300.00", "99.00"], strict=True)):
        Event.objects.create(
            contact=person, kind="purchase", occurred_at=timezone.now() - timedelta(days=3),
            amount=Decimal(amount), source="ui", idempotency_key=f"preview-{n}",
        )  # fmt: skip
    tree = {"type": "group", "match": "all", "children": [
        {"type": "events", "kind": "purchase", "measure": "sum", "op": "gte", "value": "200", "days": 90}]}  # fmt: skip
    counts = {
        role: _count(role_client(role).post(reverse("segment_preview"), _flat(tree), **EN))
        for role in ("admin", "manager", "operator", "other")
    }
    assert counts == {"admin": 2, "manager": 2, "operator": 1, "other": 1}


def _count(response) -> int:
    match = re.search(r'data-testid="preview-count">([0-9,]+)<', response.content.decode())
    return int(match.group(1).replace(",", ""))


def test_preview_points_at_the_offending_condition(role_client):
    tree = {"type": "group", "match": "all", "children": [
        city_is("上海")["children"][0],
        {"type": "group", "match": "any", "children": [
            {"type": "field", "field": "order_count", "op": "gte", "value": "three"}]},
    ]}  # fmt: skip
    response = role_client("manager").post(reverse("segment_preview"), _flat(tree), **EN)
    html = response.content.decode()
    assert response.status_code == 200 and 'data-testid="preview-error"' in html
    slot = re.search(r'<div id="err-n-1-0"[^>]*>(.*?)</div>', html, re.S).group(1)
    assert "whole number" in slot
    assert re.search(r'<div id="err-n-0"[^>]*></div>', html)  # the other slots are cleared


@pytest.mark.parametrize(
    "action,expected",
    [
        ("add:n", 2),
        ("group:n", 2),
        ("remove:n-0", 0),
    ],
)
def test_structural_actions(role_client, action, expected):
    response = role_client("manager").post(
        reverse("segment_builder"), {**_flat(city_is("上海")), "action": action}
    )
    tree = tree_from_form(submitted(response.content.decode()))
    assert len(tree["children"]) == expected
    assert (
        'id="rule-preview"' in response.content.decode() and 'hx-swap-oob="true"' in response.content.decode()
    )


def test_changing_a_conditions_type_or_field_starts_it_afresh(role_client):
    form = {**_flat(city_is("上海")), "n-0.was": "field", "n-0.type": "tier"}
    tree = tree_from_form(
        submitted(role_client("manager").post(reverse("segment_builder"), form).content.decode())
    )
    assert tree["children"][0] == {"type": "tier", "op": "in", "tiers": []}
    form = {**_flat(city_is("上海")), "n-0.was_field": "city", "n-0.field": "order_count"}
    tree = tree_from_form(
        submitted(role_client("manager").post(reverse("segment_builder"), form).content.decode())
    )
    assert tree["children"][0] == {"type": "field", "field": "order_count", "op": "eq"}


# --- saving ----------------------------------------------------------------------------------------


def test_create_saves_and_fills_the_segment(
    role_client, people, operator, django_capture_on_commit_callbacks
):
    client = role_client("operator")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("segment_create"), {"name": "我的上海客户", **_flat(city_is("上海"))})
    segment = Segment.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "segment_detail", args=[segment.pk]
    )
    assert segment.created_by == operator and segment.definition == city_is("上海")
    assert SegmentMembership.objects.filter(segment=segment).count() == 2  # membership is everyone's
    page = client.get(reverse("segment_detail", args=[segment.pk]), **EN).content.decode()
    assert "甲" in page and "乙" not in page  # the operator sees only their own members


def test_create_with_errors_keeps_the_input_and_points_at_the_condition(role_client):
    tree = {"type": "group", "match": "all", "children": [{"type": "field", "field": "city", "op": "equals"}]}
    response = role_client("manager").post(reverse("segment_create"), {"name": "", **_flat(tree)}, **EN)
    html = response.content.decode()
    assert response.status_code == 200 and not Segment.objects.exists()
    assert "Enter a name." in html
    response = role_client("manager").post(reverse("segment_create"), {"name": "上海", **_flat(tree)}, **EN)
    html = response.content.decode()
    assert re.search(r'<div id="err-n-0"[^>]*>.*This value is required', html, re.S)
    assert 'value="上海"' in html and not Segment.objects.exists()


def test_edit_round_trips_through_the_page(role_client, shanghai, django_capture_on_commit_callbacks):
    client = role_client("manager")
    page = client.get(reverse("segment_edit", args=[shanghai.pk])).content.decode()
    assert validate_tree(tree_from_form(submitted(page))) == shanghai.definition
    form = {"name": "上海客户", **_flat(city_is("北京"))}
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("segment_edit", args=[shanghai.pk]), form).status_code == 302
    shanghai.refresh_from_db()
    assert shanghai.definition == city_is("北京") and shanghai.member_count == 1


def test_a_self_reference_is_refused_in_the_builder(role_client, shanghai):
    tree = {
        "type": "group",
        "match": "all",
        "children": [{"type": "segment", "op": "in", "segment": shanghai.pk}],
    }
    url = reverse("segment_preview") + f"?segment={shanghai.pk}"
    html = role_client("manager").post(url, _flat(tree), **EN).content.decode()
    assert re.search(r'<div id="err-n-0"[^>]*>.*cannot include itself', html, re.S)


# --- a segment's page ------------------------------------------------------------------------------


def test_detail_shows_rule_size_history_and_filters_members(role_client, shanghai, people):
    client = role_client("manager")
    page = client.get(reverse("segment_detail", args=[shanghai.pk]), **EN)
    html = page.content.decode()
    assert page.status_code == 200
    assert "city is “上海”" in html and 'data-chart="segment_size"' in html
    assert "甲" in html and "乙" in html and "丙" not in html
    # The members table is the contact list's: its filters apply, through htmx partials on the same URL.
    partial = client.get(reverse("segment_detail", args=[shanghai.pk]), {"q": "甲"}, HTTP_HX_REQUEST="true")
    assert "甲" in partial.content.decode() and "乙" not in partial.content.decode()
    assert "<html" not in partial.content.decode()


def test_the_contact_list_and_its_export_understand_the_segment_scope(role_client, shanghai, people):
    client = role_client("manager")
    html = client.get(reverse("contact_list"), {"segment": shanghai.pk}, **EN).content.decode()
    assert "甲" in html and "丙" not in html and "In segment “上海客户”" in html
    html = client.get(reverse("contact_list"), {"segment": 999999}, **EN).content.decode()
    assert "no such segment" in html and "丙" in html  # ignored, like any bad filter
    # An operator cannot use a segment that is not theirs, even by URL.
    html = role_client("other").get(reverse("contact_list"), {"segment": shanghai.pk}, **EN).content.decode()
    assert "no such segment" in html


def test_refresh_now_shows_progress_then_reloads(role_client, shanghai):
    client = role_client("manager")
    Segment.objects.filter(pk=shanghai.pk).update(member_count=0)
    response = client.post(reverse("segment_refresh", args=[shanghai.pk]), HTTP_HX_REQUEST="true")
    assert 'data-testid="refreshing"' in response.content.decode()  # the task is queued on commit
    segment_refresh(segment_id=shanghai.pk)  # what the worker does
    status = client.get(reverse("segment_status", args=[shanghai.pk]) + "?was=running")
    assert status["HX-Refresh"] == "true"
    shanghai.refresh_from_db()
    assert shanghai.member_count == 2 and shanghai.refresh_requested_at is None


def test_duplicate_share_and_delete(
    role_client, shanghai, operator, other_operator, django_capture_on_commit_callbacks
):
    client = role_client("manager")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("segment_duplicate", args=[shanghai.pk]))
    copy = Segment.objects.exclude(pk=shanghai.pk).get()
    assert response["Location"] == reverse("segment_detail", args=[copy.pk]) and copy.member_count == 2

    assert (
        client.post(reverse("segment_share", args=[shanghai.pk]), {"users": [operator.pk]}).status_code == 302
    )
    assert list(shanghai.shared_with.all()) == [operator]
    shared_page = role_client("operator").get(reverse("segment_detail", args=[shanghai.pk]))
    assert shared_page.status_code == 200
    assert role_client("operator").get(reverse("segment_edit", args=[shanghai.pk])).status_code == 404
    assert role_client("other").get(reverse("segment_detail", args=[shanghai.pk])).status_code == 404

    client = role_client("manager")
    assert client.post(reverse("segment_delete", args=[copy.pk])).status_code == 302
    assert not Segment.objects.filter(pk=copy.pk).exists()


def test_delete_is_refused_while_another_rule_names_the_segment(role_client, shanghai, manager):
    user = Segment.objects.create(
        name="用它的",
        created_by=manager,
        definition={
            "type": "group",
            "match": "all",
            "children": [{"type": "segment", "op": "in", "segment": shanghai.pk}],
        },
    )
    response = role_client("manager").post(reverse("segment_delete", args=[shanghai.pk]), **EN)
    assert response.status_code == 200 and "用它的" in response.content.decode()
    assert Segment.objects.filter(pk=shanghai.pk).exists() and user.pk


def test_bulk_action_on_all_members_runs_in_batches_with_progress(
    role_client, shanghai, people, tag, django_capture_on_commit_callbacks
):
    client = role_client("operator")
    segment_share(actor=None, segment=shanghai, users=[people[0].owner])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("segment_bulk", args=[shanghai.pk]), {"action": "add_tag", "target": tag.pk}
        )
    assert response.status_code == 302
    job = SegmentBulkJob.objects.get()
    assert (job.status, job.total, job.processed, job.changed) == ("done", 1, 1, 1)
    # Only the operator's own member was tagged, not the other operator's.
    assert set(ContactTag.objects.filter(tag=tag).values_list("contact_id", flat=True)) == {people[0].pk}
    status = client.get(reverse("segment_bulk_status", args=[shanghai.pk, job.pk]), **EN)
    assert "1 of 1 done" in status.content.decode()


def test_assigning_owners_to_all_members_is_for_managers(role_client, shanghai, people, operator):
    segment_share(actor=None, segment=shanghai, users=[operator])
    client = role_client("operator")
    response = client.post(
        reverse("segment_bulk", args=[shanghai.pk]), {"action": "assign_owner", "target": operator.pk}
    )
    assert response.status_code == 302 and not SegmentBulkJob.objects.exists()


def test_a_broken_rule_is_shown_on_the_page(
    role_client, manager, people, tag, django_capture_on_commit_callbacks
):
    tree = {
        "type": "group",
        "match": "all",
        "children": [{"type": "tags", "op": "has_any", "tags": [tag.pk]}],
    }
    segment = Segment.objects.create(name="爱吃辣", created_by=manager, definition=tree)
    segment_refresh(segment_id=segment.pk)
    tag.delete()
    segment_refresh(segment_id=segment.pk)
    html = role_client("manager").get(reverse("segment_detail", args=[segment.pk]), **EN).content.decode()
    assert 'data-testid="broken"' in html and "no longer exists" in html


# --- who may reach what ----------------------------------------------------------------------------

PAGES = [
    ("get", "segment_list", False),
    ("get", "segment_create", False),
    ("get", "segment_detail", True),
    ("get", "segment_edit", True),
    ("get", "segment_share", True),
    ("get", "segment_delete", True),
    ("get", "segment_status", True),
]


@pytest.mark.parametrize("method,name,needs_pk", PAGES)
@pytest.mark.parametrize(
    "who,made_by_operator,expected",
    [
        ("anon", False, 302),
        ("operator", True, 200),  # their own segment
        ("other", True, 404),  # someone else's, not shared
        ("manager", True, 200),
        ("admin", True, 200),
    ],
)
def test_who_may_reach_each_page(
    role_client, operator, method, name, needs_pk, who, made_by_operator, expected
):
    segment = Segment.objects.create(name="运营的", created_by=operator, definition=city_is("上海"))
    url = reverse(name, args=[segment.pk]) if needs_pk else reverse(name)
    response = getattr(role_client(who), method)(url)
    if not needs_pk and who == "other":
        expected = 200  # the list and the new-segment page are everyone's
    assert response.status_code == expected


def test_the_list_shows_only_visible_segments_with_sparklines(role_client, operator, manager):
    Segment.objects.create(name="运营的", created_by=operator, definition=city_is("上海"), member_count=3)
    Segment.objects.create(name="经理的", created_by=manager, definition=city_is("上海"))
    html = role_client("operator").get(reverse("segment_list")).content.decode()
    assert "运营的" in html and "经理的" not in html and "<svg" in html
    html = role_client("manager").get(reverse("segment_list")).content.decode()
    assert "运营的" in html and "经理的" in html


def test_a_fixed_lists_members_table_can_remove_the_checked_contacts(role_client, manager, people):
    from segments.services import static_segment_create

    static = static_segment_create(actor=manager, name="名单", contacts=Contact.objects.filter(city="上海"))
    client = role_client("manager")
    page = client.get(reverse("segment_detail", args=[static.pk]), **EN).content.decode()
    assert 'data-testid="remove-from-list"' in page
    partial = client.get(reverse("segment_detail", args=[static.pk]), {"q": "甲"}, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200 and 'data-testid="remove-from-list"' in partial.content.decode()
    response = client.post(reverse("segment_static_remove", args=[static.pk]), {"ids": [people[0].pk]})
    assert response.status_code == 302
    assert set(SegmentMembership.objects.filter(segment=static).values_list("contact_id", flat=True)) == {
        people[1].pk
    }
    # The contact list's bulk bar offers "save as list"; a dynamic segment's members table offers no removal.
    assert 'data-testid="save-selection"' in client.get(reverse("contact_list")).content.decode()
