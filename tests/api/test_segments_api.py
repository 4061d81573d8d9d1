"""GET /segments, GET /segments/{id}, GET /segments/{id}/members, POST /segments, PATCH /segments/{id},
POST /segments/{id}/refresh: cursor pages, rule validation with paths, scopes on every endpoint."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import ApiScope
from contacts.models import AuditEntry, Contact
from segments.models import Segment, SegmentKind, SegmentMembership
from segments.services import segment_save, static_segment_create

from .conftest import ALL_SCOPES

SEG_READ, SEG_WRITE = ApiScope.SEGMENTS_READ.value, ApiScope.SEGMENTS_WRITE.value
CONTACTS_READ = ApiScope.CONTACTS_READ.value
DEFINITION = ["body", "payload", "definition"]


def group(*children, match="all") -> dict:
    return {"type": "group", "match": match, "children": list(children)}


def city_is(city: str) -> dict:
    return {"type": "field", "field": "city", "op": "equals", "value": city}


def in_segment(pk: int) -> dict:
    return {"type": "segment", "op": "in", "segment": pk}


def send(api, method: str, path: str, body=None, *, key=..., language: str = "en"):
    """Any method, any body (a dict is sent as JSON, a str as it is), in a chosen language."""
    key = api.key if key is ... else key
    headers = {"Accept-Language": language, **({"Authorization": f"Bearer {key}"} if key else {})}
    data = body if isinstance(body, str) else json.dumps(body)
    call = getattr(api.client, method)
    if method == "get":
        return call(f"/api/v1{path}", body or {}, headers=headers)
    return call(f"/api/v1{path}", data, content_type="application/json", headers=headers)


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what a request queues on commit (the refresh task; Celery is eager in tests) before it returns."""

    def _call(function, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return function(*args, **kwargs)

    return _call


@pytest.fixture
def people(db, operator, other_operator):
    """Five contacts in 上海 (owned by two operators: a key sees them all) and two in 北京."""
    cities = ["上海", "北京", "上海", "上海", "北京", "上海", "上海"]
    owners = [operator, other_operator]
    return [
        Contact.objects.create(name=f"客户{i}", city=city, owner=owners[i % 2])
        for i, city in enumerate(cities)
    ]


@pytest.fixture
def shanghai(people, admin_user, committed):
    return committed(segment_save, actor=admin_user, name="上海客户", definition=group(city_is("上海")))


def errors(response) -> list[tuple[list, str]]:
    assert response.status_code == 422, response.content
    return [(error["loc"], error["field"]) for error in response.json()["detail"]]


# --- reading -----------------------------------------------------------------------------------------


def test_list_walks_every_segment_once_in_id_order_and_filters_by_kind(api, people, admin_user, committed):
    made = [
        committed(segment_save, actor=admin_user, name=f"分群{i}", definition=group(city_is("上海")))
        for i in range(5)
    ]
    fixed = static_segment_create(actor=admin_user, name="名单", contacts=Contact.objects.filter(city="北京"))
    seen, cursor = [], None
    while True:
        response = api.get("/segments", {"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200
        page = response.json()
        seen += [row["id"] for row in page["results"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [s.pk for s in made] + [fixed.pk]
    first = api.get("/segments", {"limit": 1}).json()["results"][0]
    assert first == {
        "id": made[0].pk, "name": "分群0", "description": "", "kind": "dynamic", "member_count": 5,
        "refreshed_at": first["refreshed_at"], "broken_reason": "", "refreshing": False,
        "created_at": first["created_at"], "updated_at": first["updated_at"],
    }  # fmt: skip
    assert first["refreshed_at"] is not None
    static = api.get("/segments", {"kind": "static"}).json()
    assert [row["id"] for row in static["results"]] == [fixed.pk] and static["next_cursor"] is None
    assert api.get("/segments", {"kind": "robot"}).status_code == 422
    bad = api.get("/segments", {"cursor": "garbage!"})
    assert errors(bad) == [(["query", "cursor"], "cursor")]


def test_get_gives_the_rule_its_words_and_the_count(api, shanghai):
    body = api.get(f"/segments/{shanghai.pk}").json()
    assert body["definition"] == group(city_is("上海"))
    assert body["count"] == body["member_count"] == 5
    assert body["description_in_words"] == "all of: city is “上海”"
    chinese = send(api, "get", f"/segments/{shanghai.pk}", language="zh-hans").json()
    assert chinese["description_in_words"] != body["description_in_words"]
    assert "上海" in chinese["description_in_words"]


def test_a_static_segment_has_no_rule_and_no_words(api, people, admin_user):
    fixed = static_segment_create(actor=admin_user, name="名单", contacts=Contact.objects.filter(city="北京"))
    body = api.get(f"/segments/{fixed.pk}").json()
    assert body["kind"] == "static" and body["definition"] == {} and body["description_in_words"] == ""
    assert body["count"] == 2


def test_members_come_in_contact_id_pages_in_the_contacts_shape(api, shanghai, people):
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get(f"/segments/{shanghai.pk}/members", params).json()
        seen += page["results"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [c["id"] for c in seen] == [c.pk for c in people if c.city == "上海"]
    contact = api.get(f"/contacts/{seen[0]['id']}").json()
    assert seen[0] == contact  # the same representation as the contacts endpoints
    assert errors(api.get(f"/segments/{shanghai.pk}/members", {"cursor": "x"})) == [
        (["query", "cursor"], "cursor")
    ]


def test_unknown_ids_are_404(api, db):
    for method, path, body in [
        ("get", "/segments/999999", None),
        ("get", "/segments/999999/members", None),
        ("patch", "/segments/999999", {"name": "x"}),
        ("post", "/segments/999999/refresh", {}),
    ]:
        response = send(api, method, path, body)
        assert response.status_code == 404, (method, path)
        assert "999999" in response.json()["detail"]
    for bad in ("0", "-1", "abc", str(2**63)):
        assert api.get(f"/segments/{bad}").status_code in (404, 422)


# --- writing -----------------------------------------------------------------------------------------


def test_create_is_201_and_the_members_are_filled_in_the_background(api, people, committed):
    body = {"name": " 北京客户 ", "description": "北方", "definition": group(city_is("北京"))}
    response = committed(api.post, "/segments", body)
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["name"] == "北京客户" and created["kind"] == "dynamic"
    assert created["definition"] == group(city_is("北京"))
    segment = Segment.objects.get(pk=created["id"])
    assert segment.created_by is None and segment.refresh_requested_at is None
    members = set(SegmentMembership.objects.filter(segment=segment).values_list("contact_id", flat=True))
    assert members == {c.pk for c in people if c.city == "北京"}
    assert api.get(f"/segments/{segment.pk}").json()["count"] == 2
    entry = AuditEntry.objects.get(action="segment.created", object_id=str(segment.pk))
    assert entry.actor is None and "API" in entry.after["via"]  # the key is named, in the request's language


def test_create_queues_the_refresh(api, people):
    response = api.post("/segments", {"name": "北京", "definition": group(city_is("北京"))})
    assert response.status_code == 201
    assert response.json()["refreshing"] is True and response.json()["member_count"] == 0


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        (
            group({"type": "field", "field": "shoe_size", "op": "equals", "value": "42"}),
            ["children", "0", "field"],
        ),
        (
            group(city_is("上海"), {"type": "field", "field": "city", "op": "near", "value": "x"}),
            ["children", "1", "op"],
        ),
        (
            group(
                city_is("上海"),
                city_is("北京"),
                {"type": "field", "field": "order_count", "op": "gte", "value": "many"},
            ),
            ["children", "2", "value"],
        ),
        (
            group({"type": "field", "field": "order_count", "op": "gte", "value": True}),
            ["children", "0", "value"],
        ),
        (group({"type": "tags", "op": "has_any", "tags": "辣"}), ["children", "0", "tags"]),
        (group({"type": "shoe"}), ["children", "0", "type"]),
        (group(city_is("上海"), group()), ["children", "1"]),
        (group(), []),
        (group(group(group(group(group(group(city_is("上海"))))))), ["children", "0"] * 5),
        (group(in_segment(999999)), ["children", "0", "segment"]),
        (group(city_is("上海"), match="most"), ["match"]),
        ({**group(city_is("上海")), "extra": 1}, ["extra"]),
        ("all of them", []),
        (42, []),
        (None, []),
        ([group(city_is("上海"))], []),
        ({}, []),
    ],
    ids=[
        "unknown field",
        "unknown operator",
        "wrong value type",
        "bool for a number",
        "tags not a list",
        "unknown type",
        "empty group",
        "empty root",
        "depth 6",
        "missing segment",
        "bad match",
        "unknown key",
        "string",
        "number",
        "null",
        "list",
        "empty object",
    ],  # fmt: skip
)
def test_bad_rules_are_422_at_the_offending_condition(api, people, definition, path):
    response = api.post("/segments", {"name": "坏规则", "definition": definition})
    assert errors(response) == [([*DEFINITION, *path], ".".join(["definition", *path]))]
    assert response.json()["detail"][0]["msg"]
    assert not Segment.objects.exists()


def test_rule_messages_speak_the_request_language(api, people):
    body = {"name": "坏规则", "definition": group(city_is("上海"), group())}
    english = send(api, "post", "/segments", body).json()["detail"][0]["msg"]
    assert english == "This group is empty; add a condition or remove the group."
    chinese = send(api, "post", "/segments", body, language="zh-hans").json()["detail"][0]["msg"]
    assert chinese == "该条件组为空，请添加条件或删除该组。"
    default = api.client.post("/api/v1/segments", json.dumps(body), content_type="application/json",
                              headers={"Authorization": f"Bearer {api.key}"})  # fmt: skip
    assert default.json()["detail"][0]["msg"] == chinese  # no Accept-Language: the default, Chinese


def test_name_and_shape_errors_have_paths(api, people):
    assert errors(api.post("/segments", {"name": "  ", "definition": group(city_is("上海"))})) == [
        (["body", "payload", "name"], "name")
    ]
    assert "name" in {f for _l, f in errors(api.post("/segments", {"name": "x" * 101, "definition": {}}))}
    assert "definition" in {f for _l, f in errors(api.post("/segments", {"name": "缺规则"}))}
    assert "name" in {f for _l, f in errors(api.post("/segments", {"definition": group(city_is("上海"))}))}
    assert api.post("/segments", "{not json", raw=True).status_code == 400


@pytest.mark.parametrize(
    "definition",
    [
        "x" * 100_000,
        -1,
        1e308,
        True,
        {"type": "group", "match": "all", "children": "abc"},
        {"type": "group", "match": "all", "children": [None, 1, "a", []]},
        {"type": ["group"], "match": {}, "children": {}},
        group({"type": "field", "field": "city", "op": "equals", "value": "a\x00b"}),
        group({"type": "field", "field": "city", "op": "equals", "value": "\ud800"}),
        group({"type": "field", "field": "order_count", "op": "gte", "value": 2**80}),
        group(in_segment(2**70)),
        group(*[city_is(str(i)) for i in range(51)]),
    ],
)
def test_odd_json_is_never_a_server_error(api, people, definition):
    response = api.post("/segments", {"name": "怪", "definition": definition})
    assert response.status_code == 422, response.content


@pytest.mark.parametrize("depth", [7, 300, 5000])
def test_deeply_nested_json_is_never_a_server_error(api, people, depth):
    nested = '{"type": "group", "match": "all", "children": [' * depth + "]}" * depth
    response = api.post("/segments", f'{{"name": "深", "definition": {nested}}}', raw=True)
    assert response.status_code in (400, 422), response.content


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
OPS = ["equals", "contains", "in", "not_in", "has_any", "has_all", "eq", "gte", "between", "before",
       "within_last_days", "more_than_days_ago", "is_true", "is_empty", "count", "sum"]  # fmt: skip
FIELDS = ["city", "name", "gender", "source", "birthday", "joined_at", "last_active_at", "order_count",
          "total_spent", "opted_out", "cf:size", "cf:", "id"]  # fmt: skip
VALUES = (
    JSON
    | st.sampled_from(["上海", "2024-02-30", "2024-01-01", "12.50", "-0", "1e9", 0, 30, 2**63])
    | st.lists(st.sampled_from([1, "1", "2025-01-01", "辣", None, 2**63]), max_size=3)
)
CONDITIONS = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            [
                "field",
                "tags",
                "tier",
                "tier_rank",
                "owner",
                "team",
                "events",
                "birthday_within",
                "segment",
                "nope",
            ]
        )
    },  # fmt: skip
    optional={
        "field": st.sampled_from(FIELDS) | JSON,
        "op": st.sampled_from(OPS) | JSON,
        "value": VALUES,
        "tags": VALUES,
        "segment": VALUES,
        "kind": st.sampled_from(["purchase", "refund", "x"]),
        "measure": st.sampled_from(["count", "sum", "avg"]),
        "days": VALUES,
        "min": VALUES,
        "max": VALUES,
        "tz": st.sampled_from(["Asia/Shanghai", "Mars/Base", ""]),
        "manager": VALUES,
    },  # fmt: skip
)
RULES = st.recursive(
    CONDITIONS | JSON,
    lambda inner: st.fixed_dictionaries(
        {
            "type": st.just("group"),
            "match": st.sampled_from(["all", "any", "none", "some"]),
            "children": st.lists(inner, max_size=4),
        }  # fmt: skip
    ),
    max_leaves=10,
)


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(definition=RULES)
def test_generated_rules_are_never_a_server_error(api, shanghai, definition):
    created = api.post("/segments", {"name": "生成", "definition": definition})
    assert created.status_code in (201, 422), created.content
    changed = patch(api, shanghai.pk, {"definition": definition})
    assert changed.status_code in (200, 422), changed.content
    if created.status_code == 422:
        assert changed.status_code == 422 and changed.json() == created.json()


def test_a_wide_valid_rule_is_accepted(api, people, committed):
    wide = group(
        *[group(*[city_is(f"{i}-{j}") for j in range(10)], match="any") for i in range(10)], match="any"
    )
    response = committed(api.post, "/segments", {"name": "宽", "definition": wide})
    assert response.status_code == 201


def patch(api, pk, body, **kwargs):
    return send(api, "patch", f"/segments/{pk}", body, **kwargs)


def test_patch_changes_only_what_is_sent(api, shanghai, people, committed):
    response = committed(patch, api, shanghai.pk, {"description": "沪"})
    assert response.status_code == 200
    assert response.json()["name"] == "上海客户" and response.json()["description"] == "沪"
    response = committed(patch, api, shanghai.pk, {"definition": group(city_is("北京"))})
    assert response.status_code == 200 and response.json()["refreshing"] is True
    assert api.get(f"/segments/{shanghai.pk}").json()["count"] == 2
    assert response.json()["description"] == "沪" and response.json()["name"] == "上海客户"
    assert AuditEntry.objects.filter(action="segment.changed", object_id=str(shanghai.pk)).count() == 2
    assert errors(patch(api, shanghai.pk, {"name": None})) == [(["body", "payload", "name"], "name")]
    assert errors(patch(api, shanghai.pk, {"definition": None})) == [(DEFINITION, "definition")]


def test_patch_of_a_rule_is_validated_too(api, shanghai):
    bad = {
        "definition": group(city_is("上海"), {"type": "field", "field": "city", "op": "near", "value": "x"})
    }
    assert errors(patch(api, shanghai.pk, bad)) == [
        ([*DEFINITION, "children", "1", "op"], "definition.children.1.op")
    ]
    assert Segment.objects.get(pk=shanghai.pk).definition == group(city_is("上海"))


def test_a_segment_cannot_refer_to_itself(api, shanghai):
    response = patch(api, shanghai.pk, {"definition": group(city_is("上海"), in_segment(shanghai.pk))})
    assert errors(response) == [([*DEFINITION, "children", "1", "segment"], "definition.children.1.segment")]
    assert "itself" in response.json()["detail"][0]["msg"]


def test_a_cycle_through_another_segment_is_refused(api, shanghai, admin_user, committed):
    other = committed(segment_save, actor=admin_user, name="B", definition=group(in_segment(shanghai.pk)))
    response = patch(api, shanghai.pk, {"definition": group(in_segment(other.pk))})
    assert errors(response) == [([*DEFINITION, "children", "0", "segment"], "definition.children.0.segment")]
    assert "B" in response.json()["detail"][0]["msg"]
    # naming another segment without a loop is fine
    third = committed(api.post, "/segments", {"name": "C", "definition": group(in_segment(other.pk))})
    assert third.status_code == 201
    assert api.get(f"/segments/{third.json()['id']}").json()["count"] == 5


def test_a_static_segment_can_be_renamed_but_has_no_rule(api, people, admin_user):
    fixed = static_segment_create(actor=admin_user, name="名单", contacts=Contact.objects.filter(city="北京"))
    renamed = patch(api, fixed.pk, {"name": "北京名单", "description": "导入"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "北京名单"
    refused = patch(api, fixed.pk, {"definition": group(city_is("上海"))})
    assert errors(refused) == [(DEFINITION, "definition")]
    assert "static" in refused.json()["detail"][0]["msg"]
    kept = Segment.objects.get(pk=fixed.pk)
    assert kept.kind == SegmentKind.STATIC and kept.definition == {} and kept.member_count == 2


def test_refresh_is_queued_and_202(api, shanghai, people, committed):
    Contact.objects.filter(pk=people[1].pk).update(
        city="上海"
    )  # not through the pipeline: a refresh finds it
    queued = api.post(f"/segments/{shanghai.pk}/refresh", {})
    assert queued.status_code == 202 and queued.json()["refreshing"] is True
    done = committed(api.post, f"/segments/{shanghai.pk}/refresh", {})
    assert done.status_code == 202
    after = api.get(f"/segments/{shanghai.pk}").json()
    assert after["count"] == 6 and after["refreshing"] is False


def test_a_static_segment_cannot_be_refreshed(api, people, admin_user):
    fixed = static_segment_create(actor=admin_user, name="名单", contacts=Contact.objects.filter(city="北京"))
    response = api.post(f"/segments/{fixed.pk}/refresh", {})
    assert response.status_code == 409 and "static" in response.json()["detail"]


# --- keys and scopes ---------------------------------------------------------------------------------


def endpoints(segment) -> list[tuple[str, str, object, list[str], int]]:
    """(method, path, body, scopes needed, success status)."""
    return [
        ("get", "/segments", None, [SEG_READ], 200),
        ("get", f"/segments/{segment.pk}", None, [SEG_READ], 200),
        ("get", f"/segments/{segment.pk}/members", None, [SEG_READ, CONTACTS_READ], 200),
        ("post", "/segments", {"name": "新", "definition": group(city_is("上海"))}, [SEG_WRITE], 201),
        ("patch", f"/segments/{segment.pk}", {"description": "改"}, [SEG_WRITE], 200),
        ("post", f"/segments/{segment.pk}/refresh", {}, [SEG_WRITE], 202),
    ]


@pytest.mark.parametrize("index", range(6))
def test_missing_and_revoked_keys_are_401(api, shanghai, revoked_key, index):
    method, path, body, _scopes, _ok = endpoints(shanghai)[index]
    for key in (None, "nonsense", revoked_key):
        response = send(api, method, path, body, key=key)
        assert response.status_code == 401, (key, response.content)
        assert "API key" in response.json()["detail"]


@pytest.mark.parametrize("index", range(6))
def test_each_scope_needed_is_checked(api, make_key, shanghai, index):
    method, path, body, scopes, ok = endpoints(shanghai)[index]
    for missing in scopes:
        key = make_key(*[s for s in ALL_SCOPES if s != missing])
        response = send(api, method, path, body, key=key)
        assert response.status_code == 403, (missing, response.content)
        assert missing in response.json()["detail"]
    assert send(api, method, path, body, key=make_key(*scopes)).status_code == ok
    assert Segment.objects.count() == (2 if method == "post" and path == "/segments" else 1)


def test_scope_messages_speak_the_request_language(api, make_key, shanghai):
    key = make_key(SEG_READ)
    response = send(api, "get", f"/segments/{shanghai.pk}/members", key=key, language="zh-hans")
    assert response.status_code == 403
    assert response.json()["detail"] == f"该 API 密钥缺少“{CONTACTS_READ}”权限范围。"
