"""The SOP inbox: who sees which tasks, overdue and today, marking sent / skipped through htmx, bad input."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from contacts.models import Contact, ContactTag
from sop.models import Touchpoint, TouchStatus
from sop.selectors import day_bounds, inbox_for

from .factories import make_template, open_task

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
HTMX = {"HTTP_HX_REQUEST": "true", **EN}


@pytest.fixture
def template(db):
    return make_template("新客欢迎")


@pytest.fixture
def overdue(template, contact, operator):
    start, _end = day_bounds(operator)
    return open_task(template, contact, due_at=start - timedelta(hours=3), rendered="张三您好，欢迎加入")


@pytest.fixture
def today(template, contact, operator):
    start, end = day_bounds(operator)
    due = max(start, min(timezone.now(), end - timedelta(minutes=1)))
    return open_task(template, contact, position=2, due_at=due, rendered="第二条")


@pytest.fixture
def others_task(template, other_contact):
    return open_task(template, other_contact, rendered="李四的消息")


def test_anonymous_is_sent_to_login(role_client):
    response = role_client("anon").get(reverse("sop_inbox"))
    assert response.status_code == 302 and "/login" in response["Location"]


def test_operator_sees_own_tasks_in_sections(role_client, overdue, today, others_task, tier, tag, contact):
    contact.tier = tier
    contact.last_active_at = timezone.now() - timedelta(days=2)
    contact.save(update_fields=["tier", "last_active_at"])
    ContactTag.objects.create(contact=contact, tag=tag)
    response = role_client("operator").get(reverse("sop_inbox"), **EN)
    assert response.status_code == 200
    html = response.content.decode()
    assert "张三您好，欢迎加入" in html and "第二条" in html
    assert "李四的消息" not in html
    assert html.index('id="overdue"') < html.index("张三您好，欢迎加入") < html.index('id="today"')
    assert html.index('id="today"') < html.index("第二条")
    assert "金卡" in html and "辣" in html and "2\xa0days ago" in html
    assert reverse("contact_detail", args=[contact.pk]) in html
    assert 'data-testid="team-link"' not in html
    assert response.context["overdue_count"] == 1 and response.context["today_count"] == 1


def test_grouped_by_template_and_step(template, contact, operator):
    other = Contact.objects.create(name="王五", owner=operator)
    open_task(template, contact)
    open_task(template, other)
    second = make_template("生日关怀", steps=1)
    open_task(second, contact)
    groups = inbox_for(operator)["today"] + inbox_for(operator)["overdue"]
    sizes = sorted((g.template.name, g.step.position, len(g.tasks)) for g in groups)
    assert sizes == [("新客欢迎", 1, 2), ("生日关怀", 1, 1)]


def test_tomorrow_is_not_in_the_inbox(template, contact, operator):
    _start, end = day_bounds(operator)
    open_task(template, contact, due_at=end + timedelta(minutes=1), rendered="明天的")
    data = inbox_for(operator)
    assert data["today_count"] == 0 and data["overdue_count"] == 0


def test_day_is_the_users_time_zone(template, contact, operator):
    """Due 23:30 Shanghai time is 'today' for a Shanghai user, but already tomorrow's for a user in UTC+14."""
    operator.time_zone = "Pacific/Kiritimati"
    operator.save(update_fields=["time_zone"])
    start, end = day_bounds(operator)
    open_task(template, contact, due_at=start - timedelta(minutes=1))
    assert inbox_for(operator)["overdue_count"] == 1


def test_a_task_without_text_is_rendered_on_the_fly(template, contact, operator):
    open_task(template, contact, rendered="")
    task = inbox_for(operator)["today"][0].tasks[0]
    assert task.rendered == "张三您好，这是第1条消息"


def test_manager_sees_own_tasks_and_the_team_link(role_client, overdue, manager):
    response = role_client("manager").get(reverse("sop_inbox"), **EN)
    assert response.status_code == 200
    assert "张三您好，欢迎加入" not in response.content.decode()  # the operator's, not the manager's own
    assert 'data-testid="team-link"' in response.content.decode()


def test_user_without_the_permission_gets_404(client, django_user_model):
    from tests.conftest import make_user

    nobody = make_user(django_user_model, "nobody", None)
    client.force_login(nobody)
    assert client.get(reverse("sop_inbox")).status_code == 404


# --- working a task -------------------------------------------------------------------------------------


def test_done_through_htmx_updates_the_card(role_client, overdue):
    response = role_client("operator").post(
        reverse("sop_task_done", args=[overdue.pk]), {"outcome": "已发，客户回了表情"}, **HTMX
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="task-{overdue.pk}"' in html and "已发，客户回了表情" in html
    assert 'data-testid="done"' not in html
    trigger = json.loads(response["HX-Trigger"])
    assert trigger["toast"]["level"] == "success" and trigger["sop-task-changed"]
    assert Touchpoint.objects.get(pk=overdue.pk).status == TouchStatus.DONE


def test_double_submit_is_a_warning_not_an_error(role_client, overdue):
    client = role_client("operator")
    client.post(reverse("sop_task_done", args=[overdue.pk]), {}, **HTMX)
    again = client.post(reverse("sop_task_skip", args=[overdue.pk]), {}, **HTMX)
    assert again.status_code == 200
    assert json.loads(again["HX-Trigger"])["toast"]["level"] == "warning"
    assert Touchpoint.objects.get(pk=overdue.pk).status == TouchStatus.DONE


def test_skip_without_htmx_redirects_with_a_message(role_client, overdue):
    response = role_client("operator").post(reverse("sop_task_skip", args=[overdue.pk]), {"outcome": "x"})
    assert response.status_code == 302 and response["Location"] == reverse("sop_inbox")
    assert Touchpoint.objects.get(pk=overdue.pk).status == TouchStatus.SKIPPED


def test_another_operators_task_is_404(role_client, others_task):
    client = role_client("operator")
    assert client.post(reverse("sop_task_done", args=[others_task.pk]), {}, **HTMX).status_code == 404
    assert client.post(reverse("sop_task_skip", args=[others_task.pk]), {}).status_code == 404
    assert Touchpoint.objects.get(pk=others_task.pk).status == TouchStatus.OPEN


@pytest.mark.parametrize("who", ["manager", "admin"])
def test_manager_and_admin_may_work_the_teams_task(role_client, others_task, who):
    response = role_client(who).post(reverse("sop_task_done", args=[others_task.pk]), {}, **HTMX)
    assert response.status_code == 200
    assert Touchpoint.objects.get(pk=others_task.pk).status == TouchStatus.DONE


@pytest.mark.parametrize("pk", [0, 999999])
def test_unknown_task_is_404(role_client, pk):
    assert role_client("operator").post(reverse("sop_task_done", args=[pk]), {}).status_code == 404


def test_get_is_not_allowed(role_client, overdue):
    assert role_client("operator").get(reverse("sop_task_done", args=[overdue.pk])).status_code == 405


def test_too_long_outcome_is_a_422_toast(role_client, overdue):
    response = role_client("operator").post(
        reverse("sop_task_done", args=[overdue.pk]), {"outcome": "x" * 201}, **HTMX
    )
    assert response.status_code == 422
    assert json.loads(response["HX-Trigger"])["toast"]["level"] == "danger"
    assert Touchpoint.objects.get(pk=overdue.pk).status == TouchStatus.OPEN


def test_too_long_outcome_without_htmx_redirects(role_client, overdue):
    response = role_client("operator").post(
        reverse("sop_task_done", args=[overdue.pk]), {"outcome": "x" * 999}
    )
    assert response.status_code == 302
    assert Touchpoint.objects.get(pk=overdue.pk).status == TouchStatus.OPEN


def test_message_is_escaped(role_client, template, contact):
    open_task(template, contact, rendered="<script>alert(1)</script>")
    html = role_client("operator").get(reverse("sop_inbox")).content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_inbox_queries_do_not_grow_with_tasks(
    client, template, operator, tag, tier, django_assert_max_num_queries
):
    from contacts.models import ContactTag as CT

    def add(n):
        for i in range(n):
            person = Contact.objects.create(
                name=f"客户{i}{Contact.objects.count()}", owner=operator, tier=tier
            )
            CT.objects.create(contact=person, tag=tag)
            open_task(template, person, rendered="您好")

    client.force_login(operator)
    add(2)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(reverse("sop_inbox"))
    add(15)
    with django_assert_max_num_queries(len(few)):
        assert len(client.get(reverse("sop_inbox")).context["today"][0].tasks) == 17


def test_a_task_from_a_deactivated_owner_says_why(role_client, template, contact, manager):
    task = open_task(template, contact, assignee=manager, rendered="您好")
    Touchpoint.objects.filter(pk=task.pk).update(note="owner_deactivated")
    html = role_client("manager").get(reverse("sop_inbox"), **EN).content.decode()
    assert "owner was deactivated" in html
    html = role_client("manager").get(reverse("sop_team"), {"show": "open"}, **EN).content.decode()
    assert "owner deactivated" in html
