"""SOP template pages: every page for the four roles, bad input never a 500, the htmx preview."""

import pytest
from django.urls import reverse

from contacts.models import Contact
from segments.models import Segment, SegmentKind
from sop.models import Enrollment, SopSettings, SopStep, SopTemplate, Trigger

from .conftest import add_step

ROLES = ["operator", "other", "manager", "admin"]
ADMIN_ONLY = {"operator": 403, "other": 403, "manager": 403, "admin": 200}
READERS = {"operator": 403, "other": 403, "manager": 200, "admin": 200}


def _pages(template):
    step = template.steps.get(position=1)
    return {
        "list": (reverse("sop_template_list"), READERS),
        "detail": (reverse("sop_template_detail", args=[template.pk]), READERS),
        "create": (reverse("sop_template_create"), ADMIN_ONLY),
        "edit": (reverse("sop_template_edit", args=[template.pk]), ADMIN_ONLY),
        "step_create": (reverse("sop_step_create", args=[template.pk]), ADMIN_ONLY),
        "step_edit": (reverse("sop_step_edit", args=[template.pk, step.pk]), ADMIN_ONLY),
        "preview": (reverse("sop_step_preview", args=[template.pk]), ADMIN_ONLY),
        "preview_contacts": (reverse("sop_step_preview_contacts", args=[template.pk]), ADMIN_ONLY),
        "settings": (reverse("sop_settings"), ADMIN_ONLY),
        "enroll_count": (reverse("sop_template_enroll", args=[template.pk]), READERS),
    }


PAGE_NAMES = ["list", "detail", "create", "edit", "step_create", "step_edit", "preview", "preview_contacts",
              "settings", "enroll_count"]  # fmt: skip


@pytest.mark.parametrize("page", PAGE_NAMES)
@pytest.mark.parametrize("role", ROLES)
def test_get_pages_by_role(role_client, sop_template, page, role):
    url, expected = _pages(sop_template)[page]
    assert role_client(role).get(url).status_code == expected[role]


@pytest.mark.parametrize("role", ROLES)
def test_anonymous_is_sent_to_login(role_client, sop_template, role):
    response = role_client("anon").get(reverse("sop_template_list"))
    assert response.status_code == 302 and "login" in response["Location"]


POSTS = ["activate", "deactivate", "duplicate", "step_delete", "step_move"]


@pytest.mark.parametrize("action", POSTS)
@pytest.mark.parametrize("role", ["operator", "other", "manager"])
def test_admin_actions_refused_to_others(role_client, sop_template, action, role):
    step = sop_template.steps.get(position=2)
    urls = {
        "activate": reverse("sop_template_activate", args=[sop_template.pk]),
        "deactivate": reverse("sop_template_deactivate", args=[sop_template.pk]),
        "duplicate": reverse("sop_template_duplicate", args=[sop_template.pk]),
        "step_delete": reverse("sop_step_delete", args=[sop_template.pk, step.pk]),
        "step_move": reverse("sop_step_move", args=[sop_template.pk, step.pk]),
    }
    assert role_client(role).post(urls[action], {"direction": "up"}).status_code == 403
    assert SopTemplate.objects.count() == 1 and sop_template.steps.count() == 2
    sop_template.refresh_from_db()
    assert not sop_template.active


def test_missing_template_is_404_for_admin(role_client):
    assert role_client("admin").get(reverse("sop_template_detail", args=[999])).status_code == 404
    assert role_client("operator").get(reverse("sop_template_detail", args=[999])).status_code == 403


# --- list and detail ----------------------------------------------------------------------------------------


def test_list_shows_counts_and_badges(role_client, sop_template, contact):
    SopTemplate.objects.filter(pk=sop_template.pk).update(active=True)
    Enrollment.objects.create(template=sop_template, contact=contact, trigger_key="manual:1")
    Enrollment.objects.create(
        template=sop_template, contact=contact, trigger_key="manual:0", status="completed"
    )
    response = role_client("admin").get(reverse("sop_template_list"))
    body = response.content.decode()
    assert (
        "新客欢迎" in body and 'data-testid="badge-active"' in body and 'data-testid="new-template"' in body
    )
    row = response.context["rows"][0]["template"]
    assert (row.step_count, row.active_runs, row.total_runs) == (2, 1, 2)


def test_manager_reads_without_edit_buttons(role_client, sop_template):
    body = role_client("manager").get(reverse("sop_template_list")).content.decode()
    assert 'data-testid="new-template"' not in body
    body = role_client("manager").get(reverse("sop_template_detail", args=[sop_template.pk])).content.decode()
    assert 'data-testid="edit-template"' not in body and 'data-testid="add-step"' not in body
    assert 'data-testid="activate"' not in body and 'data-testid="step"' in body


def test_detail_shows_steps_timing_and_problems(role_client, sop_template):
    add_step(sop_template, name="跟进", offset_kind="hours_after", offset_hours=4, content="{{ contact.phone }}",
             transactional=True)  # fmt: skip
    response = role_client("admin").get(reverse("sop_template_detail", args=[sop_template.pk]),
                                        HTTP_ACCEPT_LANGUAGE="en")  # fmt: skip
    body = response.content.decode()
    assert "Day 0 (the day they enter) at 10:00" in body and "Day 1 at 10:00" in body
    assert "4 hours after the previous step" in body
    assert 'data-testid="problems"' in body and "contact.phone" in body
    assert "Transactional" in body


def test_detail_renders_in_the_default_language(role_client, sop_template):
    response = role_client("admin").get(reverse("sop_template_detail", args=[sop_template.pk]))
    assert response.status_code == 200 and 'lang="zh-hans"' in response.content.decode()


def test_activate_modal_counts_current_members(role_client, sop_template, segment):
    SopTemplate.objects.filter(pk=sop_template.pk).update(
        trigger=Trigger.SEGMENT_ENTERED, trigger_segment=segment
    )
    response = role_client("admin").get(reverse("sop_template_detail", args=[sop_template.pk]),
                                        HTTP_ACCEPT_LANGUAGE="en")  # fmt: skip
    assert response.context["current_members"] == 2
    assert "Also enroll the 2 current members" in response.content.decode()


# --- template form ------------------------------------------------------------------------------------------


def _template_post(**over):
    return {
        "name": "生日关怀", "description": "", "priority": "0", "trigger": "birthday", "trigger_source": "",
        "trigger_event_kind": "", "birthday_days_before": "3", "reentry": "once", "reentry_days": "30",
        "cap_policy": "defer", "exit_on_opt_out": "on", "exit_goal_kind": "", "attribution_days": "7",
    } | over  # fmt: skip


def test_create_template(role_client):
    response = role_client("admin").post(reverse("sop_template_create"), _template_post())
    template = SopTemplate.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "sop_template_detail", args=[template.pk]
    )
    assert template.trigger == Trigger.BIRTHDAY and template.birthday_days_before == 3 and not template.active


@pytest.mark.parametrize(
    "over,field",
    [
        ({"trigger": "tag_added"}, "trigger_tag"),
        ({"trigger": "segment_entered"}, "trigger_segment"),
        ({"trigger": "event"}, "trigger_event_kind"),
        ({"trigger": "churn_alert"}, "trigger"),
        ({"birthday_days_before": "99"}, "birthday_days_before"),
        ({"birthday_days_before": "abc"}, "birthday_days_before"),
        ({"trigger": "nope"}, "trigger"),
        ({"trigger_tag": "999999999999999999999"}, "trigger_tag"),
        ({"priority": "1000"}, "priority"),
        ({"name": ""}, "name"),
    ],
)
def test_create_template_bad_input(role_client, over, field):
    response = role_client("admin").post(reverse("sop_template_create"), _template_post(**over))
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert not SopTemplate.objects.exists()


def test_template_segment_choices_are_the_visible_ones(role_client, admin_user, segment):
    response = role_client("admin").get(reverse("sop_template_create"))
    assert list(response.context["form"].fields["trigger_segment"].queryset) == [segment]


def test_edit_active_template_to_a_broken_trigger_is_refused(role_client, sop_template):
    SopTemplate.objects.filter(pk=sop_template.pk).update(active=True)
    response = role_client("admin").post(
        reverse("sop_template_edit", args=[sop_template.pk]), _template_post(trigger="tag_added")
    )
    assert response.status_code == 400
    sop_template.refresh_from_db()
    assert sop_template.trigger == Trigger.MANUAL


# --- activate / deactivate / duplicate -------------------------------------------------------------------------


def test_activate_with_enroll_current(role_client, sop_template, segment):
    SopTemplate.objects.filter(pk=sop_template.pk).update(
        trigger=Trigger.SEGMENT_ENTERED, trigger_segment=segment
    )
    response = role_client("admin").post(
        reverse("sop_template_activate", args=[sop_template.pk]), {"enroll_current": "1"}
    )
    assert response.status_code == 302
    sop_template.refresh_from_db()
    assert sop_template.active and Enrollment.objects.filter(template=sop_template).count() == 2


def test_activate_refused_with_problems(role_client, sop_template):
    SopStep.objects.filter(template=sop_template, position=1).update(content="{% if %}")
    response = role_client("admin").post(
        reverse("sop_template_activate", args=[sop_template.pk]), follow=True
    )
    assert response.status_code == 200
    sop_template.refresh_from_db()
    assert not sop_template.active
    assert any("Not activated" in str(m) or "未" in str(m) for m in response.context["messages"])


def test_deactivate_and_duplicate(role_client, sop_template):
    SopTemplate.objects.filter(pk=sop_template.pk).update(active=True)
    client = role_client("admin")
    assert client.post(reverse("sop_template_deactivate", args=[sop_template.pk])).status_code == 302
    sop_template.refresh_from_db()
    assert not sop_template.active
    response = client.post(reverse("sop_template_duplicate", args=[sop_template.pk]))
    copy = SopTemplate.objects.exclude(pk=sop_template.pk).get()
    assert response["Location"] == reverse("sop_template_detail", args=[copy.pk]) and copy.steps.count() == 2


def test_get_on_post_only_actions_is_405(role_client, sop_template):
    assert (
        role_client("admin").get(reverse("sop_template_activate", args=[sop_template.pk])).status_code == 405
    )


# --- steps ------------------------------------------------------------------------------------------------------


def _step_post(**over):
    return {
        "name": "破冰", "offset_kind": "day_at", "offset_days": "1", "offset_time": "10:00", "offset_hours": "24",
        "channel": "task", "content": "{{ contact.name }}您好", "reply_branch": "", "jump_to": "",
    } | over  # fmt: skip


def test_create_step(role_client, sop_template):
    response = role_client("admin").post(reverse("sop_step_create", args=[sop_template.pk]), _step_post())
    assert response.status_code == 302
    step = sop_template.steps.get(position=3)
    assert step.name == "破冰" and step.offset_days == 1


def test_create_email_and_webhook_steps(role_client, sop_template):
    client = role_client("admin")
    client.post(reverse("sop_step_create", args=[sop_template.pk]),
                _step_post(channel="email", config_subject="欢迎"))  # fmt: skip
    client.post(reverse("sop_step_create", args=[sop_template.pk]),
                _step_post(channel="webhook", config_url="https://h.example.com/x", config_secret="s" * 20))  # fmt: skip
    assert sop_template.steps.get(position=3).channel_config == {"subject": "欢迎"}
    webhook = sop_template.steps.get(position=4)
    # Editing without typing the secret again keeps it.
    client.post(reverse("sop_step_edit", args=[sop_template.pk, webhook.pk]),
                _step_post(channel="webhook", config_url="https://h.example.com/y", config_secret=""))  # fmt: skip
    webhook.refresh_from_db()
    assert webhook.channel_config == {"url": "https://h.example.com/y", "secret": "s" * 20}


@pytest.mark.parametrize(
    "over,field",
    [
        ({"content": "{{ contact.phone }}"}, "content"),
        ({"content": "{% load static %}"}, "content"),
        ({"content": "{% include 'base.html' %}"}, "content"),
        ({"channel": "email", "config_subject": ""}, "config_subject"),
        ({"channel": "webhook", "config_url": "x", "config_secret": "y"}, "config_url"),
        ({"channel": "nope"}, "channel"),
        ({"offset_days": "400"}, "offset_days"),
        ({"offset_days": "-1"}, "offset_days"),
        ({"offset_kind": "hours_after", "offset_hours": "99999"}, "offset_hours"),
        ({"offset_time": "25:99"}, "offset_time"),
        ({"reply_branch": "jump", "jump_to": "1"}, "jump_to"),
        ({"reply_branch": "jump", "jump_to": "abc"}, "jump_to"),
        ({"content": "x" * 6000}, "content"),
    ],
)
def test_step_bad_input(role_client, sop_template, over, field):
    response = role_client("admin").post(
        reverse("sop_step_create", args=[sop_template.pk]), _step_post(**over)
    )
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert sop_template.steps.count() == 2


def test_step_of_another_template_is_404(role_client, sop_template, admin_user):
    other = SopTemplate.objects.create(name="别的")
    foreign = add_step(other)
    url = reverse("sop_step_edit", args=[sop_template.pk, foreign.pk])
    assert role_client("admin").get(url).status_code == 404


def test_step_move_and_delete(role_client, sop_template):
    client = role_client("admin")
    second = sop_template.steps.get(position=2)
    client.post(reverse("sop_step_move", args=[sop_template.pk, second.pk]), {"direction": "up"})
    second.refresh_from_db()
    assert second.position == 1
    response = client.post(reverse("sop_step_move", args=[sop_template.pk, second.pk]), {"direction": "up"})
    assert response.status_code == 302  # already first: a message, not a 500
    client.post(reverse("sop_step_delete", args=[sop_template.pk, second.pk]))
    assert list(sop_template.steps.values_list("position", "name")) == [(1, "第1步")]


def test_step_form_has_variable_chips_and_contacts(role_client, sop_template, contact):
    response = role_client("admin").get(reverse("sop_step_create", args=[sop_template.pk]))
    body = response.content.decode()
    assert 'data-insert="{{ contact.name }}"' in body and 'data-testid="preview-contact"' in body
    assert contact.name in body


# --- preview (htmx) -----------------------------------------------------------------------------------------------


def test_preview_renders_for_the_chosen_contact(role_client, sop_template, contact, other_contact):
    response = role_client("admin").post(
        reverse("sop_step_preview", args=[sop_template.pk]),
        {
            "content": "{{ contact.name }}，我是{{ owner.name }}。{{ unsubscribe }}",
            "preview_contact": other_contact.pk,
        },
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert "李四，我是赵运营。回复 TD 退订" in body


def test_preview_shows_errors_inline(role_client, sop_template, contact):
    response = role_client("admin").post(
        reverse("sop_step_preview", args=[sop_template.pk]),
        {"content": "{{ contact.phone }} {% if %}", "preview_contact": contact.pk},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and 'data-testid="preview-errors"' in response.content.decode()


@pytest.mark.parametrize("contact_value", ["abc", "-1", "99999999999999999999999", "999"])
def test_preview_bad_contact_never_500(role_client, sop_template, contact, contact_value):
    response = role_client("admin").post(
        reverse("sop_step_preview", args=[sop_template.pk]),
        {"content": "{{ contact.name }}", "preview_contact": contact_value},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200


def test_preview_contact_search(role_client, sop_template, contact, other_contact):
    response = role_client("admin").get(
        reverse("sop_step_preview_contacts", args=[sop_template.pk]), {"q": "李"}
    )
    body = response.content.decode()
    assert "李四" in body and "张三" not in body


# --- settings -------------------------------------------------------------------------------------------------------


def test_settings_save_and_errors(role_client):
    client = role_client("admin")
    data = {"cap_per_day": "2", "cap_per_week": "5", "quiet_start": "22:00", "quiet_end": "08:00",
            "unsubscribe_text": "回复 N 退订"}  # fmt: skip
    assert client.post(reverse("sop_settings"), data).status_code == 302
    row = SopSettings.objects.get()
    assert (row.cap_per_day, row.cap_per_week, row.unsubscribe_text) == (2, 5, "回复 N 退订")
    for bad in ({"cap_per_day": "9", "cap_per_week": "3"}, {"quiet_start": "nope"}, {"unsubscribe_text": " "},
                {"cap_per_week": "99999999999999"}):  # fmt: skip
        response = client.post(reverse("sop_settings"), data | bad)
        assert response.status_code == 400
    row.refresh_from_db()
    assert row.cap_per_day == 2


def test_settings_refused_to_manager_post(role_client):
    assert role_client("manager").post(reverse("sop_settings"), {"cap_per_day": "5"}).status_code == 403


# --- enrolling a segment ---------------------------------------------------------------------------------------------


@pytest.fixture
def active_template(sop_template):
    SopTemplate.objects.filter(pk=sop_template.pk).update(active=True)
    sop_template.refresh_from_db()
    return sop_template


def test_enroll_segment_count_then_confirm(role_client, active_template, segment, contact, other_contact):
    client = role_client("manager")
    url = reverse("sop_template_enroll", args=[active_template.pk])
    response = client.get(url, {"segment": segment.pk}, HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE="en")
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert 'data-testid="enroll-confirm"' in body and "<strong>2</strong>" in body
    # Without confirm nothing happens.
    client.post(url, {"segment": segment.pk})
    assert not Enrollment.objects.exists()
    assert client.post(url, {"segment": segment.pk, "confirm": "1"}).status_code == 302
    assert set(Enrollment.objects.values_list("contact_id", flat=True)) == {contact.pk, other_contact.pk}


def test_enroll_segment_operator_forbidden(role_client, active_template, segment):
    url = reverse("sop_template_enroll", args=[active_template.pk])
    assert role_client("operator").post(url, {"segment": segment.pk, "confirm": "1"}).status_code == 403
    assert not Enrollment.objects.exists()


@pytest.mark.parametrize("value", ["", "abc", "999999", "99999999999999999999999"])
def test_enroll_segment_bad_segment(role_client, active_template, value):
    client = role_client("manager")
    url = reverse("sop_template_enroll", args=[active_template.pk])
    assert client.get(url, {"segment": value}, HTTP_HX_REQUEST="true").status_code == 200
    assert client.post(url, {"segment": value, "confirm": "1"}).status_code == 302
    assert not Enrollment.objects.exists()


def test_enroll_segment_inactive_template(role_client, sop_template, segment):
    url = reverse("sop_template_enroll", args=[sop_template.pk])
    assert role_client("admin").post(url, {"segment": segment.pk, "confirm": "1"}).status_code == 302
    assert not Enrollment.objects.exists()


def test_enroll_segment_page_without_htmx(role_client, active_template, segment):
    response = role_client("admin").get(
        reverse("sop_template_enroll", args=[active_template.pk]), {"segment": segment.pk}
    )
    assert response.status_code == 200 and "<html" in response.content.decode()


# --- enrolling the contact list's selection ---------------------------------------------------------------------------


def test_contact_list_has_the_enroll_control(role_client, active_template, contact):
    body = role_client("manager").get(reverse("contact_list")).content.decode()
    assert 'data-testid="enroll-selection"' in body and active_template.name in body
    body = role_client("operator").get(reverse("contact_list")).content.decode()
    assert 'data-testid="enroll-selection"' not in body


@pytest.mark.parametrize("role,expected", [("operator", 403), ("other", 403), ("manager", 1), ("admin", 1)])
def test_enroll_selection_by_role(role_client, active_template, contact, role, expected):
    response = role_client(role).post(
        reverse("sop_enroll_selection"),
        {"ids": [contact.pk], "template": active_template.pk, "next": "/contacts/"},
    )
    if expected == 403:
        assert response.status_code == 403 and not Enrollment.objects.exists()
    else:
        assert response.status_code == 302 and response["Location"] == "/contacts/"
        assert Enrollment.objects.get().contact == contact


def test_enroll_selection_refuses_contacts_not_visible(role_client, active_template, admin_user, contact):
    stranger_owner = type(admin_user).objects.create_user(username="x", password="pw-for-tests-1")
    hidden = Contact.objects.create(name="外人", owner=stranger_owner)
    response = role_client("manager").post(
        reverse("sop_enroll_selection"), {"ids": [contact.pk, hidden.pk], "template": active_template.pk}
    )
    assert response.status_code == 302 and not Enrollment.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        {"ids": ["abc"]},
        {"ids": []},
        {"ids": ["1"], "template": "abc"},
        {"ids": ["1"], "template": "999"},
        {"ids": ["99999999999999999999999"], "template": "1"},
        {"ids": ["1"], "next": "https://evil.example.com/"},
    ],
)
def test_enroll_selection_bad_input(role_client, active_template, contact, data):
    response = role_client("admin").post(reverse("sop_enroll_selection"), data)
    assert response.status_code == 302 and "evil" not in response["Location"]
    assert not Enrollment.objects.exists()


def test_enroll_selection_into_inactive_template_refused(role_client, sop_template, contact):
    response = role_client("admin").post(
        reverse("sop_enroll_selection"), {"ids": [contact.pk], "template": sop_template.pk}
    )
    assert response.status_code == 302 and not Enrollment.objects.exists()


def test_static_segment_kind_is_fine_for_triggers(role_client, admin_user):
    seg = Segment.objects.create(name="名单", kind=SegmentKind.STATIC, created_by=admin_user)
    response = role_client("admin").post(
        reverse("sop_template_create"), _template_post(trigger="segment_entered", trigger_segment=str(seg.pk))
    )
    assert response.status_code == 302
