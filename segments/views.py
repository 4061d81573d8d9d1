"""Segment pages: the list, a segment with its members, the rule builder, refresh, duplicate, share, delete
and bulk actions on all members. Thin function views: access helper -> form -> service -> redirect or
partial; the builder's form lives in segments.builder."""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.roles import Role, is_manager_or_admin
from contacts.forms import tag_choices
from contacts.list_page import contact_list_context
from contacts.models import EventKind, TagGroup, Tier
from contacts.selectors import contacts_visible_to, owners_assignable_by

from . import builder, services
from .models import Segment, SegmentBulkJob, SegmentChange
from .rules import RuleError, compile_tree, describe_tree, field_choices, validate_tree
from .rules.events import COMPARISONS, MEASURES
from .selectors import (
    can_change_segment,
    rule_count,
    segment_for_change,
    segment_for_user,
    segment_members,
    segments_visible_to,
    size_history,
)

SAMPLE_SIZE = 10
HISTORY_DAYS = 90
# A refresh still marked as running after this long was lost with its worker; stop showing progress.
REFRESH_SHOWN_FOR = 600


def _require(user, perm: str) -> None:
    if not user.has_perm(perm):
        raise Http404


# --- the list --------------------------------------------------------------------------------------


@require_GET
def segment_list(request):
    _require(request.user, "segments.view_segment")
    segments = list(segments_visible_to(request.user).select_related("created_by"))
    history = size_history([s.pk for s in segments])
    # The sparkline starts on the first day the segment had a size.
    rows = [{"segment": s, "history": [v for v in history[s.pk] if v is not None]} for s in segments]
    return render(request, "segments/segment_list.html", {"rows": rows})


# --- one segment -----------------------------------------------------------------------------------


def _refreshing(segment: Segment) -> bool:
    at = segment.refresh_requested_at
    return at is not None and (timezone.now() - at).total_seconds() < REFRESH_SHOWN_FOR


def _rule_words(segment: Segment) -> str:
    if not segment.is_dynamic:
        return ""
    try:
        return describe_tree(segment.definition)
    except RuleError as error:
        return str(error)


@require_GET
def segment_detail(request, pk):
    segment = segment_for_user(request.user, pk)
    path = reverse("segment_detail", args=[segment.pk])
    ctx = contact_list_context(request, segment_members(request.user, segment), list_path=path)
    ctx |= {
        "segment": segment,
        "bulk_templates": [*ctx["bulk_templates"], *_list_controls(request.user, segment)],
    }
    if request.htmx and not request.htmx.boosted:
        return render(request, "segments/segment_detail.html#members", ctx)
    today = timezone.localdate()
    history = size_history([segment.pk], days=HISTORY_DAYS, today=today)[segment.pk]
    ctx |= {
        "rule_words": _rule_words(segment),
        "broken": services.segment_check_rule(segment=segment),
        "can_change": can_change_segment(request.user, segment),
        "refreshing": _refreshing(segment),
        "chart": {
            "days": [(today - timedelta(days=HISTORY_DAYS - 1 - i)).isoformat() for i in range(HISTORY_DAYS)],
            "sizes": history,
            "series": _("Members"),
            "empty": _("No history yet"),
        },
        "recent_changes": SegmentChange.objects.filter(segment=segment)
        .select_related("contact")
        .filter(contact__in=contacts_visible_to(request.user))
        .order_by("-at", "-id")[:10],
        "used_by": services.segments_using(segment),
        "bulk_jobs": SegmentBulkJob.objects.filter(segment=segment, created_by=request.user).order_by("-id")[
            :3
        ],
        "export_query": f"segment={segment.pk}",
        "share_users": segment.shared_with.all(),
    }
    return render(request, "segments/segment_detail.html", ctx)


def _list_controls(user, segment: Segment) -> list[str]:
    """The members table of a fixed list the user may change gets "remove from list" in its bulk bar."""
    return (
        ["segments/_remove_from_list.html"]
        if not segment.is_dynamic and can_change_segment(user, segment)
        else []
    )


@require_GET
def segment_status(request, pk):
    """The refresh indicator, polled while a refresh runs; when it ends the page reloads its numbers."""
    segment = segment_for_user(request.user, pk)
    refreshing = _refreshing(segment)
    response = render(
        request, "segments/_refresh_status.html", {"segment": segment, "refreshing": refreshing}
    )
    if not refreshing and request.GET.get("was") == "running":
        response["HX-Refresh"] = "true"
    return response


@require_POST
def segment_refresh(request, pk):
    segment = segment_for_user(request.user, pk)
    services.segment_refresh_request(actor=request.user, segment=segment)
    if request.htmx:
        return render(request, "segments/_refresh_status.html", {"segment": segment, "refreshing": True})
    return redirect("segment_detail", pk=segment.pk)


@require_POST
def segment_duplicate(request, pk):
    _require(request.user, "segments.add_segment")
    segment = segment_for_user(request.user, pk)
    copy = services.segment_duplicate(actor=request.user, segment=segment)
    messages.success(request, _("Made a copy: “%(name)s”.") % {"name": copy.name})
    return redirect("segment_detail", pk=copy.pk)


def _shareable_users(user, segment: Segment):
    """Active operators and managers other than the creator; a manager shares within their team."""
    users = (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=[Role.OPERATOR.value, Role.MANAGER.value])
        .exclude(pk=segment.created_by_id)
    )
    if not user.is_superuser and not user.groups.filter(name=Role.ADMIN.value).exists():
        if is_manager_or_admin(user):
            users = users.filter(Q(manager=user) | Q(pk=user.pk))
        else:
            users = users.filter(manager_id=user.manager_id) if user.manager_id else users.none()
    return users.distinct().order_by("display_name", "username")


@require_http_methods(["GET", "POST"])
def segment_share(request, pk):
    segment = segment_for_change(request.user, pk)
    candidates = _shareable_users(request.user, segment)
    if request.method == "POST":
        chosen_ids = {int(v) for v in request.POST.getlist("users") if v.isdigit()}
        chosen = [u for u in candidates if u.pk in chosen_ids]
        if len(chosen) != len(chosen_ids):
            messages.error(
                request, _("Some of the chosen people cannot be given this segment. Nothing changed.")
            )
        else:
            # Sharing replaces the list among the people this user may share with; others keep theirs.
            kept = segment.shared_with.exclude(pk__in=candidates.values("pk"))
            services.segment_share(actor=request.user, segment=segment, users=[*kept, *chosen])
            messages.success(request, _("Sharing saved."))
            return redirect("segment_detail", pk=segment.pk)
    shared = set(segment.shared_with.values_list("pk", flat=True))
    return render(
        request,
        "segments/segment_share.html",
        {"segment": segment, "candidates": candidates, "shared": shared},
    )


@require_http_methods(["GET", "POST"])
def segment_delete(request, pk):
    segment = segment_for_change(request.user, pk)
    _require(request.user, "segments.delete_segment")
    used_by = services.segments_using(segment)
    if request.method == "POST" and not used_by:
        services.segment_delete(actor=request.user, segment=segment)
        messages.success(request, _("Deleted the segment “%(name)s”.") % {"name": segment.name})
        return redirect("segment_list")
    return render(request, "segments/segment_delete.html", {"segment": segment, "used_by": used_by})


@require_POST
def segment_bulk(request, pk):
    segment = segment_for_user(request.user, pk)
    raw = request.POST.get("target", "")
    target = int(raw) if raw.isdigit() and len(raw) < 19 else None
    try:
        job = services.segment_bulk_start(
            actor=request.user, segment=segment, action=request.POST.get("action", ""), target_id=target
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("segment_detail", pk=segment.pk)
    messages.info(request, _("Applying to %(n)d members in the background.") % {"n": job.total})
    return redirect(f"{reverse('segment_detail', args=[segment.pk])}#bulk-jobs")


@require_GET
def segment_bulk_status(request, pk, job_pk):
    segment = segment_for_user(request.user, pk)
    job = get_object_or_404(SegmentBulkJob, pk=job_pk, segment=segment, created_by=request.user)
    return render(request, "segments/_bulk_job.html", {"job": job, "segment": segment})


# --- the builder -----------------------------------------------------------------------------------


def _widgets(user, segment: Segment | None) -> dict:
    """What the condition widgets offer: fields, tags, tiers, people, event kinds, other segments."""
    fields = field_choices()
    users = owners_assignable_by(user) if user.has_perm("contacts.assign_owner") else [user]
    return {
        "menu": builder.menu(),
        "contact_fields": [f for f in fields if not f["name"].startswith("cf:")],
        "custom_fields": [f for f in fields if f["name"].startswith("cf:")],
        "operator_labels": {key: str(label) for key, label in builder.OPERATOR_LABELS.items()},
        "tag_groups": tag_choices(),
        "all_tag_groups": TagGroup.objects.all(),
        "tiers": Tier.objects.order_by("rank"),
        "users": users,
        "managers": get_user_model()
        .objects.filter(is_active=True, groups__name=Role.MANAGER.value)
        .order_by("display_name", "username"),
        "event_kinds": EventKind.choices,
        "measures": [(m, {"count": _("number of"), "sum": _("amount of")}[m]) for m in MEASURES],
        "comparisons": list(COMPARISONS.items()),
        "other_segments": segments_visible_to(user).exclude(pk=getattr(segment, "pk", None)).order_by("name"),
        "builder_url": reverse("segment_builder") + (f"?segment={segment.pk}" if segment else ""),
    }


def _check(user, tree: dict, segment: Segment | None) -> RuleError | None:
    try:
        services.segment_validate_rule(actor=user, definition=tree, segment_id=getattr(segment, "pk", None))
    except RuleError as error:
        return error
    return None


def _preview(user, tree: dict, segment: Segment | None) -> dict:
    """Count and sample among the contacts the user sees, or the error that stops the rule."""
    error = _check(user, tree, segment)
    node_ids = _node_ids(builder.builder_nodes(tree))
    if error is not None:
        location = builder.error_location(error)
        return {"error": error, "error_node": location[0], "node_ids": node_ids}
    now = timezone.now()
    matching = contacts_visible_to(user).filter(compile_tree(tree, now=now))
    return {
        "count": rule_count(user, tree, now=now),
        "sample": matching.select_related("tier", "owner").order_by("-id")[:SAMPLE_SIZE],
        "words": describe_tree(validate_tree(tree)),
        "node_ids": node_ids,
        "is_operator": not is_manager_or_admin(user),
    }


def _node_ids(node: builder.BuilderNode) -> list[str]:
    return [node.id, *(nid for child in node.children for nid in _node_ids(child))]


def _segment_from_query(request) -> Segment | None:
    raw = request.GET.get("segment", "")
    return segment_for_change(request.user, raw) if raw.isdigit() and len(raw) < 19 else None


@require_POST
def segment_builder(request):
    """A structural change (add, remove, retype): the tree redrawn, with the preview beside it (out of band)."""
    _require(request.user, "segments.add_segment")
    segment = _segment_from_query(request)
    tree = builder.apply_action(builder.tree_from_form(request.POST), request.POST.get("action", ""))
    error = _check(request.user, tree, segment)
    ctx = {
        "root": builder.builder_nodes(tree, error),
        **_widgets(request.user, segment),
        **_preview(request.user, tree, segment),
        "oob": True,
    }
    return render(request, "segments/_builder.html", ctx)


@require_POST
def segment_preview(request):
    """A changed value: the count, the sample, the rule in words, or the error and where it is."""
    _require(request.user, "segments.add_segment")
    segment = _segment_from_query(request)
    tree = builder.tree_from_form(request.POST)
    ctx = {**_preview(request.user, tree, segment), "oob_errors": True}
    return render(request, "segments/_preview.html", ctx)


def _form_page(
    request, segment: Segment | None, tree: dict, error: RuleError | None, form_errors: dict, pristine=False
):
    query = f"segment={segment.pk}" if segment else ""
    ctx = {
        "segment": segment,
        "name": request.POST.get("name", segment.name if segment else ""),
        "description": request.POST.get("description", segment.description if segment else ""),
        "form_errors": form_errors,
        "root": builder.builder_nodes(tree, error),
        "preview_url": reverse("segment_preview") + (f"?{query}" if query else ""),
        **_widgets(request.user, segment),
        **(_preview(request.user, tree, segment) if segment is None or segment.is_dynamic else {}),
        "pristine": pristine,  # a new rule nobody has touched yet: a hint, not an error
    }
    return render(request, "segments/segment_form.html", ctx)


def _save(request, segment: Segment | None):
    tree = builder.tree_from_form(request.POST) if segment is None or segment.is_dynamic else {}
    try:
        saved = services.segment_save(
            actor=request.user,
            segment=segment,
            name=request.POST.get("name", ""),
            description=request.POST.get("description", ""),
            definition=tree,
        )
    except ValidationError as error:
        return _form_page(request, segment, tree, _check(request.user, tree, segment), error.message_dict)
    except RuleError as error:
        return _form_page(request, segment, tree, error, {"rule": [error.message]})
    messages.success(request, _("Saved “%(name)s”. Its members are being refreshed.") % {"name": saved.name})
    return redirect("segment_detail", pk=saved.pk)


@require_http_methods(["GET", "POST"])
def segment_create(request):
    _require(request.user, "segments.add_segment")
    if request.method == "POST":
        return _save(request, None)
    start = {"type": "group", "match": "all", "children": [dict(builder.NEW_CONDITION)]}
    return _form_page(request, None, start, None, {}, pristine=True)


@require_http_methods(["GET", "POST"])
def segment_edit(request, pk):
    segment = segment_for_change(request.user, pk)
    _require(request.user, "segments.change_segment")
    if request.method == "POST":
        return _save(request, segment)
    tree = segment.definition if segment.is_dynamic else {}
    return _form_page(request, segment, tree or builder.EMPTY_RULE, None, {})
