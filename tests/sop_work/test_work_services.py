"""Marking SOP tasks sent or skipped (conditional update, step actions, who may) and reassigning them."""

import pytest
from django.utils import translation

from accounts.roles import Role
from contacts.models import AuditEntry, ContactTag, Tag, TagGroup
from sop.models import SkipReason, Touchpoint, TouchStatus
from sop.work_services import (
    NotAllowed,
    touchpoint_mark_done,
    touchpoint_skip,
    touchpoints_reassign,
)
from tests.conftest import make_user

from .factories import make_template, open_task, step


@pytest.fixture
def template(db):
    return make_template()


@pytest.fixture
def task(template, contact):
    return open_task(template, contact, rendered="张三您好")


def test_done_moves_open_to_done_once(task, operator):
    first = touchpoint_mark_done(actor=operator, touchpoint=task, outcome="  客户说谢谢  ")
    assert first.changed
    task.refresh_from_db()
    assert task.status == TouchStatus.DONE
    assert task.finished_by == operator and task.finished_at is not None
    assert task.outcome == "客户说谢谢"
    finished_at = task.finished_at
    with translation.override("en"):
        again = touchpoint_mark_done(actor=operator, touchpoint=task, outcome="second")
    assert not again.changed and "already" in again.message
    task.refresh_from_db()
    assert task.outcome == "客户说谢谢" and task.finished_at == finished_at
    assert AuditEntry.objects.filter(action="sop.task_done", object_id=str(task.pk)).count() == 1


def test_skip_after_done_changes_nothing(task, operator):
    touchpoint_mark_done(actor=operator, touchpoint=task)
    result = touchpoint_skip(actor=operator, touchpoint=task, outcome="no")
    assert not result.changed
    assert Touchpoint.objects.get(pk=task.pk).status == TouchStatus.DONE


def test_skip_records_operator_reason(task, operator):
    assert touchpoint_skip(actor=operator, touchpoint=task, outcome="客户在外地").changed
    task.refresh_from_db()
    assert task.status == TouchStatus.SKIPPED and task.reason == SkipReason.OPERATOR
    assert task.outcome == "客户在外地"


def test_outcome_is_cut_to_the_field_length(task, operator):
    touchpoint_mark_done(actor=operator, touchpoint=task, outcome="好" * 500)
    task.refresh_from_db()
    assert len(task.outcome) == 200


def test_done_applies_the_step_action_tag(template, contact, operator):
    tag = Tag.objects.create(group=TagGroup.objects.create(name="SOP"), name="已欢迎")
    first = step(template, 1)
    first.action_add_tag = tag
    first.save(update_fields=["action_add_tag"])
    task = open_task(template, contact)
    touchpoint_mark_done(actor=operator, touchpoint=task)
    assert ContactTag.objects.filter(contact=contact, tag=tag).exists()
    # a second click neither fails nor adds it twice
    touchpoint_mark_done(actor=operator, touchpoint=task)
    assert ContactTag.objects.filter(contact=contact, tag=tag).count() == 1


def test_skip_does_not_apply_the_step_action(template, contact, operator):
    tag = Tag.objects.create(group=TagGroup.objects.create(name="SOP"), name="已欢迎")
    step(template, 1).__class__.objects.filter(template=template, position=1).update(action_add_tag=tag)
    task = open_task(template, contact)
    touchpoint_skip(actor=operator, touchpoint=task)
    assert not ContactTag.objects.filter(contact=contact, tag=tag).exists()


def test_who_may_work_a_task(task, operator, other_operator, manager, admin_user):
    with pytest.raises(NotAllowed):
        touchpoint_mark_done(actor=other_operator, touchpoint=task)
    assert Touchpoint.objects.get(pk=task.pk).status == TouchStatus.OPEN
    assert touchpoint_skip(actor=manager, touchpoint=task).changed  # the assignee's manager


def test_admin_may_work_any_task(task, admin_user):
    assert touchpoint_mark_done(actor=admin_user, touchpoint=task).changed


def test_manager_of_another_team_may_not(task, django_user_model):
    stranger = make_user(django_user_model, "boss2", Role.MANAGER)
    with pytest.raises(NotAllowed):
        touchpoint_mark_done(actor=stranger, touchpoint=task)


def test_a_task_not_open_is_not_done(template, contact, operator):
    from .factories import enroll, touch

    scheduled = touch(enroll(template, contact), step(template, 2), status=TouchStatus.SCHEDULED)
    assert not touchpoint_mark_done(actor=operator, touchpoint=scheduled).changed
    assert Touchpoint.objects.get(pk=scheduled.pk).status == TouchStatus.SCHEDULED


# --- reassign ---------------------------------------------------------------------------------------------


def test_manager_reassigns_within_the_team(task, manager, other_operator):
    moved = touchpoints_reassign(actor=manager, touchpoint_ids=[task.pk], assignee=other_operator)
    assert moved == 1
    assert Touchpoint.objects.get(pk=task.pk).assignee == other_operator
    assert AuditEntry.objects.filter(action="sop.task_reassigned", object_id=str(task.pk)).exists()


def test_operator_may_not_reassign(task, operator, other_operator):
    with pytest.raises(NotAllowed):
        touchpoints_reassign(actor=operator, touchpoint_ids=[task.pk], assignee=other_operator)


def test_manager_may_not_give_to_someone_outside_the_team(task, manager, django_user_model):
    outsider = make_user(django_user_model, "outsider", Role.OPERATOR)
    with pytest.raises(NotAllowed):
        touchpoints_reassign(actor=manager, touchpoint_ids=[task.pk], assignee=outsider)
    assert Touchpoint.objects.get(pk=task.pk).assignee_id == task.assignee_id


def test_inactive_or_roleless_assignee_refused(task, manager, admin_user, django_user_model, other_operator):
    roleless = make_user(django_user_model, "norole", None, manager=manager)
    with pytest.raises(NotAllowed):
        touchpoints_reassign(actor=manager, touchpoint_ids=[task.pk], assignee=roleless)
    other_operator.is_active = False
    other_operator.save(update_fields=["is_active"])
    with pytest.raises(NotAllowed):
        touchpoints_reassign(actor=admin_user, touchpoint_ids=[task.pk], assignee=other_operator)


def test_manager_may_not_reassign_another_teams_task(template, manager, django_user_model):
    from contacts.models import Contact

    boss2 = make_user(django_user_model, "boss2", Role.MANAGER)
    far = make_user(django_user_model, "far", Role.OPERATOR, manager=boss2)
    theirs = open_task(template, Contact.objects.create(name="远方", owner=far))
    mine = make_user(django_user_model, "mine", Role.OPERATOR, manager=manager)
    with pytest.raises(NotAllowed):
        touchpoints_reassign(actor=manager, touchpoint_ids=[theirs.pk], assignee=mine)
    assert Touchpoint.objects.get(pk=theirs.pk).assignee == far


def test_admin_reassigns_across_teams(task, admin_user, django_user_model):
    far = make_user(django_user_model, "far", Role.OPERATOR)
    assert touchpoints_reassign(actor=admin_user, touchpoint_ids=[task.pk], assignee=far) == 1


def test_only_open_tasks_move(task, manager, operator, other_operator):
    touchpoint_mark_done(actor=operator, touchpoint=task)
    assert touchpoints_reassign(actor=manager, touchpoint_ids=[task.pk], assignee=other_operator) == 0
    assert Touchpoint.objects.get(pk=task.pk).assignee == operator


def test_reassign_is_all_or_nothing(template, task, manager, other_operator, django_user_model):
    from contacts.models import Contact

    far = make_user(django_user_model, "far", Role.OPERATOR)
    theirs = open_task(template, Contact.objects.create(name="远方", owner=far))
    with pytest.raises(NotAllowed):
        touchpoints_reassign(actor=manager, touchpoint_ids=[task.pk, theirs.pk], assignee=other_operator)
    assert Touchpoint.objects.get(pk=task.pk).assignee_id == task.assignee_id


def test_unassigned_task_of_a_visible_customer(template, manager, other_operator):
    from contacts.models import Contact

    pool = Contact.objects.create(name="公海客户", owner=None)
    orphan = open_task(template, pool)
    assert orphan.assignee is None
    assert touchpoints_reassign(actor=manager, touchpoint_ids=[orphan.pk], assignee=other_operator) == 1
