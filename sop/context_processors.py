"""The SOP entry in the navigation: the user's overdue task count for the Inbox badge.

Lazy: the COUNT (one indexed query on sop_touch_inbox) runs only when a template shows the badge, at most
once per request, and never for anonymous users or users who do not work SOP tasks."""

from .selectors import overdue_count


class _OverdueBadge:
    def __init__(self, user):
        self.user = user
        self.value: int | None = None

    def __call__(self) -> int:
        if self.value is None:
            self.value = overdue_count(self.user)
        return self.value


def sop_nav(request):
    user = getattr(request, "user", None)
    if not getattr(user, "is_authenticated", False) or not user.has_perm("sop.work_touchpoints"):
        return {"sop_overdue_count": 0}
    return {"sop_overdue_count": _OverdueBadge(user)}
