"""Working SOP tasks (the `task` channel): an operator marks an open task sent or skipped; a manager hands
tasks to another operator of the team. Each change is one conditional UPDATE (status = open), so a double
click, two tabs or a dispatcher exiting the enrollment at the same moment change a task at most once.

Who may work a task (touchpoint_workable_by): its assignee, a manager of the assignee's team (or, for an
unassigned task, a manager who can see the customer), an admin.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.roles import Role, role_of
from contacts.models import AuditEntry
from contacts.selectors import contacts_visible_to, team_member_ids
from contacts.services import audit_record

from .actions import step_actions_apply
from .models import SkipReason, Touchpoint, TouchStatus

OUTCOME_MAX = 200


class NotAllowed(Exception):
    """The actor may not do this to (some of) these tasks, or the assignee is not a valid choice."""


@dataclass
class WorkResult:
    """What became of a click: changed (it was open and is now done/skipped), or why not, in words."""

    changed: bool
    message: str


def touchpoints_workable_by(user):
    """The touchpoints `user` may work or reassign (any status; callers narrow to open)."""
    role = role_of(user)
    qs = Touchpoint.objects.all()
    if role == Role.ADMIN:
        return qs
    if role == Role.MANAGER:
        team = team_member_ids(user)
        unassigned_visible = Q(assignee__isnull=True, contact__in=contacts_visible_to(user).values("pk"))
        return qs.filter(Q(assignee_id__in=team) | unassigned_visible)
    if role == Role.OPERATOR:
        return qs.filter(assignee=user)
    return qs.none()


def _clean_outcome(outcome: str) -> str:
    return (outcome or "").strip()[:OUTCOME_MAX]


def _finish(*, actor, touchpoint: Touchpoint, status: str, outcome: str, reason: str = "") -> WorkResult:
    if not actor.has_perm("sop.work_touchpoints"):
        raise NotAllowed("work")
    if not touchpoints_workable_by(actor).filter(pk=touchpoint.pk).exists():
        raise NotAllowed(touchpoint.pk)
    now = timezone.now()
    changed = Touchpoint.objects.filter(pk=touchpoint.pk, status=TouchStatus.OPEN).update(
        status=status, finished_at=now, finished_by=actor, outcome=_clean_outcome(outcome), reason=reason
    )
    if not changed:
        current = Touchpoint.objects.filter(pk=touchpoint.pk).values_list("status", flat=True).first()
        label = TouchStatus(current).label if current else _("deleted")
        return WorkResult(False, _("This task was already handled (%(status)s).") % {"status": label})
    touchpoint.refresh_from_db()
    audit_record(
        actor=actor,
        action=f"sop.task_{status}",
        obj=touchpoint,
        before={"status": TouchStatus.OPEN.value},
        after={"status": status, "outcome": touchpoint.outcome, "contact_id": touchpoint.contact_id},
    )
    return WorkResult(True, "")


@transaction.atomic
def touchpoint_mark_done(*, actor, touchpoint: Touchpoint, outcome: str = "") -> WorkResult:
    """The operator sent it: open → done, then the step's actions (e.g. add a tag)."""
    result = _finish(actor=actor, touchpoint=touchpoint, status=TouchStatus.DONE, outcome=outcome)
    if result.changed:
        step_actions_apply(touchpoint_ids=[touchpoint.pk])
        result.message = _("Marked as sent.")
    return result


@transaction.atomic
def touchpoint_skip(*, actor, touchpoint: Touchpoint, outcome: str = "") -> WorkResult:
    """The operator decided not to send it: open → skipped (reason operator). No step actions."""
    result = _finish(
        actor=actor,
        touchpoint=touchpoint,
        status=TouchStatus.SKIPPED,
        outcome=outcome,
        reason=SkipReason.OPERATOR,
    )
    if result.changed:
        result.message = _("Skipped.")
    return result


def assignees_for(actor):
    """Active users with the Operator or Manager role the actor may hand tasks to: a manager's team (them
    and their operators), anyone for an admin."""
    users = (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=[Role.OPERATOR.value, Role.MANAGER.value])
        .distinct()
        .order_by("display_name", "username")
    )
    role = role_of(actor)
    if role == Role.ADMIN:
        return users
    if role == Role.MANAGER:
        return users.filter(pk__in=team_member_ids(actor))
    return users.none()


@transaction.atomic
def touchpoints_reassign(*, actor, touchpoint_ids: Iterable[int], assignee) -> int:
    """Give open tasks to `assignee`. All or nothing: a task the actor may not reassign, or an assignee out
    of scope, changes nothing (NotAllowed). Tasks no longer open (done meanwhile) are left alone; returns
    how many moved."""
    ids = sorted(set(touchpoint_ids))
    if not ids or not actor.has_perm("sop.reassign_touchpoints"):
        raise NotAllowed("reassign")
    if assignee is None or not assignees_for(actor).filter(pk=assignee.pk).exists():
        raise NotAllowed("assignee")
    allowed = set(touchpoints_workable_by(actor).filter(pk__in=ids).values_list("pk", flat=True))
    if allowed != set(ids):
        raise NotAllowed("touchpoints")
    rows = list(
        Touchpoint.objects.select_for_update()
        .filter(pk__in=ids, status=TouchStatus.OPEN)
        .exclude(assignee=assignee)
        .values_list("pk", "assignee_id", "contact_id")
    )
    moved = Touchpoint.objects.filter(pk__in=[r[0] for r in rows], status=TouchStatus.OPEN).update(
        assignee=assignee
    )
    AuditEntry.objects.bulk_create(
        AuditEntry(
            actor=actor,
            action="sop.task_reassigned",
            object_type="touchpoint",
            object_id=str(pk),
            object_repr=f"touch {pk}",
            before={"assignee_id": old},
            after={"assignee_id": assignee.pk, "contact_id": contact_id},
        )
        for pk, old, contact_id in rows
    )
    return moved
