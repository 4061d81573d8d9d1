"""The overview (home) and the admins' system status page. Thin views: the reads are in scrm/selectors.py."""

from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_GET

from accounts.roles import Role, is_admin, role_of
from contacts.models import Source

from . import selectors


def _contact_list_url(**params) -> str:
    url = reverse("contact_list")
    return f"{url}?{urlencode(params)}" if params else url


def _stat_cards(overview: selectors.Overview) -> list[dict]:
    return [
        {
            "key": "total",
            "tone": "success",
            "label": _("Contacts I can see"),
            "icon": "bi-people",
            "figure": overview.total,
            "hint": _("All contacts in your scope"),
            "url": _contact_list_url(),
        },
        {
            "key": "new",
            "tone": "primary",
            "label": _("New in the last 7 days"),
            "icon": "bi-person-plus",
            "figure": overview.new_recent,
            "hint": _("Joined in the past week"),
            "url": "",
        },
        {
            "key": "inactive",
            "tone": "warning",
            "label": _("Inactive for more than 15 days"),
            "icon": "bi-hourglass-split",
            "figure": overview.inactive,
            "hint": _("Silent 15 days or longer, or never active: at risk of churning"),
            "url": _contact_list_url(inactive_days=selectors.INACTIVE_DAYS),
        },
        {
            "key": "opted_out",
            "tone": "secondary",
            "label": _("Opted out (do not disturb)"),
            "icon": "bi-bell-slash",
            "figure": overview.opted_out,
            "hint": _("Receive no SOP touchpoints"),
            "url": _contact_list_url(opted_out="yes"),
        },
    ]


def _quick_links() -> list[dict]:
    return [
        {
            "key": "list",
            "label": _("Contact list"),
            "hint": _("Search, filter and work your list"),
            "icon": "bi-person-lines-fill",
            "tone": "success",
            "url": _contact_list_url(),
        },
        {
            "key": "inactive",
            "label": _("Inactive for more than 15 days"),
            "hint": _("Reach out before they churn"),
            "icon": "bi-hourglass-split",
            "tone": "warning",
            "url": _contact_list_url(inactive_days=selectors.INACTIVE_DAYS),
        },
        {
            "key": "new",
            "label": _("New contact"),
            "hint": _("Add a customer by hand"),
            "icon": "bi-person-plus",
            "tone": "primary",
            "url": reverse("contact_create"),
        },
    ]


def _week_label(monday) -> str:
    # Translators: a date format (letters of Django's "date" filter) for week labels
    # on a chart axis; for zh-hans use "n月j日".
    return date_format(monday, pgettext("chart axis date format", "M j"))


def _chart_data(overview: selectors.Overview) -> dict:
    """What static/js/charts.js draws: numbers from the overview, labels in the user's language."""
    source_labels = dict(Source.choices)
    return {
        "weekly": {
            "title": _("New contacts per week"),
            "series": _("New contacts"),
            "weekOf": _("Week of"),
            "soFar": _("this week so far"),
            "weeks": [
                {
                    "start": monday.isoformat(),
                    "label": _week_label(monday),
                    "long": date_format(monday, "MONTH_DAY_FORMAT"),
                    "count": n,
                }
                for monday, n in overview.weeks
            ],
        },
        "sources": {
            "series": _("Contacts by source"),
            "empty": _("No contacts yet"),
            "items": [
                {
                    "code": code,
                    "label": str(source_labels.get(code, code)),
                    "count": n,
                    "url": _contact_list_url(source=code),
                }
                for code, n in overview.sources
            ],
        },
    }


def _scope_text(user) -> str:
    return {
        Role.ADMIN: _("All contacts"),
        Role.MANAGER: _("Your team's contacts and the unassigned pool"),
        Role.OPERATOR: _("The contacts you own"),
    }.get(role_of(user), "")


@require_GET
def home(request):
    overview = selectors.overview_for(request.user, tz=timezone.get_current_timezone())
    ctx = {
        "overview": overview,
        "stat_cards": _stat_cards(overview),
        "chart_data": _chart_data(overview),
        "scope_text": _scope_text(request.user),
        "cache_minutes": selectors.OVERVIEW_CACHE_SECONDS // 60,
        "quick_links": _quick_links(),
    }
    return render(request, "scrm/home.html", ctx)


@require_GET
def system_status(request):
    if not is_admin(request.user):
        raise Http404
    checks = selectors.system_checks()
    backlogs = selectors.backlogs()
    ctx = {
        "checks": checks,
        "backlogs": backlogs,
        "late_after": selectors.BACKLOG_LATE_SECONDS,
        "problems": sum(1 for check in checks if not check.ok) + sum(1 for b in backlogs if not b.ok),
        "checked_at": timezone.now(),
        "stale_after": settings.HEARTBEAT_STALE_AFTER_SECONDS,
        "refresh_seconds": 15,
    }
    if request.htmx:
        return render(request, "scrm/system_status.html#cards", ctx)
    ctx |= {
        "queues": selectors.celery_queues(),
        "schedule": selectors.beat_schedule_entries(),
        "celery_timezone": settings.CELERY_TIMEZONE,
    }
    return render(request, "scrm/system_status.html", ctx)
