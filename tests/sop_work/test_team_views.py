"""Team tasks: managers see open and overdue tasks by operator and reassign them; operators may not."""

from datetime import timedelta

import pytest
from django.urls import reverse

from accounts.roles import Role
from contacts.models import Contact
from sop.models import Touchpoint
from sop.selectors import day_bounds, team_summary
from tests.conftest import make_user

from .factories import make_template, open_task

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def setup(db, contact, other_contact, operator):
    template = make_template()
    start, _end = day_bounds(operator)
    mine_old = open_task(template, contact, position=1, due_at=start - timedelta(days=3))
    mine_today = open_task(template, contact, position=2, due_at=start + timedelta(minutes=1))
    theirs = open_task(template, other_contact, due_at=start - timedelta(hours=1))
    return {"template": template, "mine_old": mine_old, "mine_today": mine_today, "theirs": theirs}


@pytest.mark.parametrize("who", ["operator", "other"])
def test_operators_get_404(role_client, setup, who):
    assert role_client(who).get(reverse("sop_team")).status_code == 404
    response = role_client(who).post(
        reverse("sop_team_reassign"), {"ids": [setup["theirs"].pk], "assignee": 1}
    )
    assert response.status_code == 404


def test_manager_sees_overdue_by_operator(role_client, setup, operator, other_operator):
    response = role_client("manager").get(reverse("sop_team"), **EN)
    assert response.status_code == 200
    tasks = response.context["tasks"]
    assert {t.pk for t in tasks} == {setup["mine_old"].pk, setup["theirs"].pk}
    rows = {row.assignee: row for row in response.context["summary"]}
    assert rows[operator].open == 2 and rows[operator].overdue == 1
    assert rows[other_operator].open == 1 and rows[other_operator].overdue == 1
    assert rows[operator].oldest_due == setup["mine_old"].due_at


def test_all_open_and_per_assignee(role_client, setup, operator):
    client = role_client("manager")
    response = client.get(reverse("sop_team"), {"show": "open", "assignee": operator.pk})
    assert {t.pk for t in response.context["tasks"]} == {setup["mine_old"].pk, setup["mine_today"].pk}


@pytest.mark.parametrize("params", [{"assignee": "abc"}, {"assignee": "-1"}, {"show": "x" * 500}])
def test_bad_filters_are_ignored(role_client, setup, params):
    assert role_client("manager").get(reverse("sop_team"), params).status_code == 200


def test_manager_reassigns(role_client, setup, other_operator):
    response = role_client("manager").post(
        reverse("sop_team_reassign"), {"ids": [setup["mine_old"].pk], "assignee": other_operator.pk}, **EN
    )
    assert response.status_code == 302
    assert Touchpoint.objects.get(pk=setup["mine_old"].pk).assignee == other_operator


def test_reassign_keeps_the_filters(role_client, setup, other_operator, operator):
    response = role_client("manager").post(
        reverse("sop_team_reassign"),
        {
            "ids": [setup["mine_old"].pk],
            "assignee": other_operator.pk,
            "filter_show": "open",
            "filter_assignee": str(operator.pk),
        },
    )
    assert response["Location"] == reverse("sop_team") + f"?show=open&assignee={operator.pk}"


def test_reassign_outside_the_team_is_refused(role_client, setup, django_user_model):
    outsider = make_user(django_user_model, "outsider", Role.OPERATOR)
    response = role_client("manager").post(
        reverse("sop_team_reassign"),
        {"ids": [setup["mine_old"].pk], "assignee": outsider.pk},
        follow=True,
        **EN,
    )
    assert response.status_code == 200
    assert "Choose someone of your team" in response.content.decode()
    assert Touchpoint.objects.get(pk=setup["mine_old"].pk).assignee_id == setup["mine_old"].assignee_id


def test_reassign_another_teams_task_changes_nothing(role_client, setup, django_user_model, other_operator):
    boss2 = make_user(django_user_model, "boss2", Role.MANAGER)
    far = make_user(django_user_model, "far", Role.OPERATOR, manager=boss2)
    theirs = open_task(setup["template"], Contact.objects.create(name="远方", owner=far))
    response = role_client("manager").post(
        reverse("sop_team_reassign"),
        {"ids": [setup["mine_old"].pk, theirs.pk], "assignee": other_operator.pk},
        follow=True,
        **EN,
    )
    assert "Nothing was changed" in response.content.decode()
    assert Touchpoint.objects.get(pk=theirs.pk).assignee == far
    assert Touchpoint.objects.get(pk=setup["mine_old"].pk).assignee_id == setup["mine_old"].assignee_id


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"ids": ["x"], "assignee": "1"},
        {"ids": ["1"], "assignee": "abc"},
        {"ids": ["1"]},
        {"assignee": "1"},
    ],
)
def test_bad_reassign_input_is_a_message(role_client, setup, data):
    response = role_client("manager").post(reverse("sop_team_reassign"), data)
    assert response.status_code == 302


def test_admin_sees_everyone_and_reassigns_across_teams(role_client, setup, django_user_model):
    far = make_user(django_user_model, "far", Role.OPERATOR)
    client = role_client("admin")
    assert client.get(reverse("sop_team")).status_code == 200
    client.post(reverse("sop_team_reassign"), {"ids": [setup["theirs"].pk], "assignee": far.pk})
    assert Touchpoint.objects.get(pk=setup["theirs"].pk).assignee == far


def test_unassigned_and_deactivated_come_first(setup, manager, other_operator):
    pool = Contact.objects.create(name="公海", owner=None)
    open_task(setup["template"], pool, assignee=None)
    other_operator.is_active = False
    other_operator.save(update_fields=["is_active"])
    rows = team_summary(manager)
    assert rows[0].assignee is None and rows[0].open == 1
    assert rows[1].assignee == other_operator and rows[1].inactive


def test_team_member_without_tasks_is_listed(db, manager, operator):
    rows = team_summary(manager)
    assert [r.assignee for r in rows] == [operator] and rows[0].open == 0
