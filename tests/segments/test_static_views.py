"""Static segment pages: a list from a paste or a file (check, then create), from the contact list's selection,
adding to and removing from a list, snapshots; permissions for every view and role."""

import io

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation

from contacts.models import Contact
from segments.models import Segment, SegmentChange, SegmentKind, SegmentMembership
from segments.services import segment_share, static_segment_create

NEW = "/segments/new/static/"
FROM_SELECTION = "/segments/from-selection/"


@pytest.fixture(autouse=True)
def english(client):
    """The messages asserted below are the English source; the default language is Chinese."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def mine(operator, contact):
    """The operator's customers: `contact` (+8613800138000), one with another phone, one known by external id."""
    second = Contact.objects.create(name="王五", phone="+8613700137000", owner=operator)
    wecom = Contact.objects.create(name="赵六", external_userid="wmOwn0001abc", owner=operator)
    return [contact, second, wecom]


@pytest.fixture
def their_wecom(other_operator):
    return Contact.objects.create(name="孙七", external_userid="wmTheirs0002", owner=other_operator)


def _list_of(user, contacts, name="名单") -> Segment:
    return static_segment_create(
        actor=user, name=name, contacts=Contact.objects.filter(pk__in=[c.pk for c in contacts])
    )


def _members(segment) -> set[int]:
    return set(SegmentMembership.objects.filter(segment=segment).values_list("contact_id", flat=True))


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _detail(segment) -> str:
    return f"/segments/{segment.pk}/"


PASTE = "\n".join(
    [
        "138 0013 8000",  # 1: contact, with spaces
        "+86 137-0013-7000，wmOwn0001abc",  # 2: the second one with +86, and the WeCom one (full-width comma)
        "139 0013 9000",  # 3: another operator's customer: reported like an unknown number
        "12345",  # 4: not a phone
        "86-13800138000",  # 5: contact again, written differently: a duplicate
        "13600136000；wmTheirs0002",  # 6: nobody's number; another operator's external id
    ]
)


# --- a list from a paste ---------------------------------------------------------------------------


def test_check_counts_and_explains_without_creating(role_client, mine, other_contact, their_wecom):
    response = role_client("operator").post(NEW, {"name": "回访", "entries": PASTE, "preview": "1"})
    assert response.status_code == 200
    result = response.context["result"]
    assert sorted(result.contact_ids) == sorted(c.pk for c in mine)
    assert result.found == 3 and result.duplicates == 1
    assert [(u.line, u.text, u.reason) for u in result.unmatched] == [
        (3, "139 0013 9000", "no such customer"),
        (4, "12345", "not a phone or external id"),
        (6, "13600136000", "no such customer"),
        (6, "wmTheirs0002", "no such customer"),
    ]
    body = response.content.decode()
    assert 'data-testid="count-found">3<' in body and "not a phone or external id" in body
    assert not Segment.objects.exists()


def test_create_from_paste_redirects_to_the_new_list(role_client, operator, mine, other_contact):
    response = role_client("operator").post(
        NEW, {"name": " 回访 ", "description": "双十一", "entries": PASTE}
    )
    segment = Segment.objects.get()
    assert response.status_code == 302 and response["Location"] == _detail(segment)
    assert (segment.name, segment.description, segment.kind) == ("回访", "双十一", SegmentKind.STATIC)
    assert segment.created_by == operator and segment.member_count == 3
    assert _members(segment) == {c.pk for c in mine}
    assert other_contact.pk not in _members(segment)
    assert "List “回访” created with 3 contacts. 4 entries were not found." in _messages(response)


def test_a_long_list_is_matched_in_a_few_queries(role_client, operator, django_assert_max_num_queries):
    n = 2500  # more than one lookup chunk, and more ids than an IN list may bind on some databases
    Contact.objects.bulk_create(
        [Contact(name=f"客{i}", phone=f"+86138{i:08d}", owner=operator) for i in range(n)]
    )
    text = "\n".join(f"138 {i // 10000:04d} {i % 10000:04d}" for i in range(n))
    c = role_client("operator")
    with django_assert_max_num_queries(20):
        response = c.post(NEW, {"name": "大名单", "entries": text})
    segment = Segment.objects.get()
    assert response["Location"] == _detail(segment) and segment.member_count == n


def test_several_phones_on_one_line_and_names_beside_them(role_client, mine):
    text = "张三 138 0013 8000 137 0013 7000\twmOwn0001abc"
    response = role_client("operator").post(NEW, {"entries": text, "preview": "1"})
    result = response.context["result"]
    assert result.found == 3 and result.unmatched == [] and result.duplicates == 0


def test_manager_finds_the_team_customers(role_client, mine, other_contact):
    response = role_client("manager").post(NEW, {"entries": PASTE, "preview": "1"})
    assert response.context["result"].found == 4  # the operators' customers are the manager's team's


def test_the_check_step_over_htmx_is_the_result_card_only(role_client, mine):
    c = role_client("operator")
    response = c.post(NEW, {"entries": "13800138000", "preview": "1"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body and 'id="check-result"' in body
    response = c.post(NEW, {"entries": "", "preview": "1"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200  # htmx swaps only a 200: errors come in the card
    assert "Paste phones or external ids" in response.content.decode()


def test_the_first_fifty_unmatched_lines_are_listed(role_client, contact):
    text = "\n".join(["13800138000"] + [f"nobody{i}" for i in range(60)])
    result = role_client("operator").post(NEW, {"entries": text, "preview": "1"}).context["result"]
    assert result.not_found == 60 and len(result.shown) == 50 and result.not_shown == 10
    assert result.shown[0].line == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "entries": "  \n "}, "Paste phones or external ids, one per line, or upload a file."),
        (
            {"name": "x", "entries": "12345\nnobody"},
            "No line matched a customer of yours: nothing was saved.",
        ),
        ({"name": " ", "entries": "13800138000"}, "Enter a name."),
        ({"name": "x" * 101, "entries": "13800138000"}, "Ensure this value has at most 100 characters"),
    ],
)
def test_nothing_is_created_from_bad_input(role_client, contact, data, message):
    response = role_client("operator").post(NEW, data)
    assert response.status_code == 400 and message in response.content.decode()
    assert not Segment.objects.exists()


def test_paste_and_file_together_is_refused(role_client, contact):
    upload = SimpleUploadedFile("l.txt", b"13800138000\n")
    response = role_client("operator").post(NEW, {"name": "x", "entries": "13800138000", "file": upload})
    assert response.status_code == 400 and "not both" in response.content.decode()


def test_too_many_lines_is_refused_before_any_work(
    role_client, contact, settings, django_assert_max_num_queries
):
    settings.STATIC_SEGMENT_MAX_LINES = 3
    c = role_client("operator")
    with django_assert_max_num_queries(8):  # the session and the user only: no lookup of the list
        response = c.post(NEW, {"name": "x", "entries": "13800138000\n" * 4})
    assert response.status_code == 400 and "more than 3 lines" in response.content.decode()
    response = c.post(NEW, {"name": "x", "entries": "13800138000, 13800138000, 13800138000, 13800138000"})
    assert response.status_code == 400 and "more than 3 entries" in response.content.decode()
    assert not Segment.objects.exists()


def test_a_paste_bigger_than_django_reads_is_a_message_not_an_error(role_client, contact, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    response = role_client("operator").post(NEW, {"name": "x", "entries": "13800138000\n" * 500})
    assert response.status_code == 400 and "too long to paste" in response.content.decode()
    assert not Segment.objects.exists()


def test_the_page_shows_the_limits_and_the_paste_guard(role_client):
    body = role_client("operator").get(NEW).content.decode()
    assert "5.0\xa0MB" in body and "100,000 lines" in body and "data-max-paste-bytes=" in body
    assert "js/static_segments.js" in body


# --- a list from a file ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "found"),
    [
        (
            "名单.csv",
            "手机号,姓名\n138 0013 8000,张三\n+8613700137000,王五\n13900139000,李四\n".encode("gbk"),
            2,
        ),
        ("list.csv", "\ufeff手机号;备注\n13800138000;老客\n13700137000;\nwmOwn0001abc;\n".encode(), 3),
        ("list.txt", b"13800138000, 13700137000\r\nwmOwn0001abc\r\n", 3),
    ],
)
def test_upload_gbk_bom_csv_and_txt(role_client, mine, other_contact, name, content, found):
    c = role_client("operator")
    response = c.post(NEW, {"file": SimpleUploadedFile(name, content), "preview": "1"})
    assert response.context["result"].found == found
    response = c.post(NEW, {"name": "文件", "file": SimpleUploadedFile(name, content)})
    segment = Segment.objects.get()
    assert response["Location"] == _detail(segment)
    assert _members(segment) == {m.pk for m in mine[:found]}


def test_gbk_csv_header_is_skipped_and_other_customers_not_found(role_client, mine, other_contact):
    content = "手机号,姓名\n138 0013 8000,张三\n+8613700137000,王五\n13900139000,李四\n".encode("gbk")
    response = role_client("operator").post(
        NEW, {"file": SimpleUploadedFile("名单.csv", content), "preview": "1"}
    )
    result = response.context["result"]
    assert result.header == "手机号" and result.found == 2
    assert [(u.line, u.reason) for u in result.unmatched] == [(4, "no such customer")]


def test_upload_xlsx_first_column(role_client, mine):
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["phone", "name"])
    book.active.append([13800138000, "张三"])
    book.active.append(["wmOwn0001abc", "赵六"])
    data = io.BytesIO()
    book.save(data)
    response = role_client("operator").post(
        NEW, {"file": SimpleUploadedFile("l.xlsx", data.getvalue()), "preview": "1"}
    )
    result = response.context["result"]
    assert result.header == "phone" and result.found == 2 and result.unmatched == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The submitted file is empty."),
        (b"\n\n  \n", "The file holds no phones or external ids."),
        ("手机号\n".encode("gbk"), "The file holds no phones or external ids."),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "is not a CSV or Excel (.xlsx) file"),
        (b"\xd0\xcf\x11\xe0old excel", "Old Excel files (.xls) cannot be read"),
        (b"PK\x03\x04not really a workbook", "not a valid Excel (.xlsx) workbook"),
        (b"13800138000\n" + bytes(range(0x80, 0x100)) * 4, "not UTF-8 or GBK"),
    ],
)
def test_bad_files_are_a_message(role_client, contact, content, message):
    upload = SimpleUploadedFile("l.csv", content)
    response = role_client("operator").post(NEW, {"name": "x", "file": upload})
    assert response.status_code == 400 and message in response.content.decode()
    assert not Segment.objects.exists()


def test_a_file_over_the_size_limit_is_refused_before_any_work(role_client, contact, settings):
    settings.STATIC_SEGMENT_MAX_UPLOAD_BYTES = 100
    upload = SimpleUploadedFile("l.txt", b"13800138000\n" * 20)
    response = role_client("operator").post(NEW, {"name": "x", "file": upload})
    assert response.status_code == 400
    assert "The file is 240\xa0bytes; a list can be at most 100\xa0bytes." in response.content.decode()
    assert not Segment.objects.exists()


def test_a_file_over_the_line_limit_is_refused(role_client, contact, settings):
    settings.STATIC_SEGMENT_MAX_LINES = 10
    upload = SimpleUploadedFile("l.csv", b"13800138000\n" * 11)
    response = role_client("operator").post(NEW, {"name": "x", "file": upload})
    assert response.status_code == 400 and "more than 10 lines" in response.content.decode()


# --- from the contact list's selection ---------------------------------------------------------------


def test_selection_becomes_a_list(role_client, operator, mine):
    response = role_client("operator").post(
        FROM_SELECTION, {"ids": [m.pk for m in mine], "name": "勾选", "next": "/contacts/?q=x"}
    )
    segment = Segment.objects.get()
    assert response.status_code == 302 and response["Location"] == _detail(segment)
    assert segment.kind == SegmentKind.STATIC and segment.created_by == operator
    assert _members(segment) == {m.pk for m in mine}
    assert not SegmentChange.objects.exists()  # a new list's members did not "enter" it


@pytest.mark.parametrize(
    ("ids", "name", "message"),
    [
        ("theirs", "x", "Some selected contacts are not yours (or no longer exist). No list was created."),
        ("missing", "x", "Some selected contacts are not yours (or no longer exist). No list was created."),
        ("abc", "x", "The selection was not understood"),
        ("99999999999999999999", "x", "The selection was not understood"),
        ("", "x", "Select at least one contact."),
        ("mine", "", "Enter a name."),
    ],
)
def test_selection_with_bad_ids_creates_nothing(role_client, contact, other_contact, ids, name, message):
    values = {
        "theirs": [contact.pk, other_contact.pk],
        "missing": [contact.pk, 987654],
        "mine": [contact.pk],
    }.get(ids, [ids] if ids else [])
    response = role_client("operator").post(
        FROM_SELECTION, {"ids": values, "name": name, "next": "/contacts/?tag=1"}
    )
    assert response.status_code == 302 and response["Location"] == "/contacts/?tag=1"
    assert any(message in m for m in _messages(response))
    assert not Segment.objects.exists()


def test_selection_never_redirects_off_site(role_client, contact, other_contact):
    response = role_client("operator").post(
        FROM_SELECTION, {"ids": [other_contact.pk], "name": "x", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/contacts/"


def test_the_save_selection_include_has_no_form_of_its_own(rf, operator):
    from django.template.loader import render_to_string

    request = rf.get("/contacts/")
    request.user = operator
    html = render_to_string("segments/_save_selection.html", request=request)
    assert f'formaction="{FROM_SELECTION}"' in html and 'name="name"' in html and "<form" not in html


# --- adding to and removing from a list --------------------------------------------------------------


def test_add_to_own_list_from_a_paste(role_client, operator, mine):
    segment = _list_of(operator, mine[:1])
    url = f"/segments/{segment.pk}/members/add/"
    c = role_client("operator")
    result = c.post(url, {"entries": "13800138000\n137 0013 7000", "preview": "1"}).context["result"]
    assert (result.found, result.already, result.new) == (2, 1, 1)
    response = c.post(url, {"entries": "13800138000\n137 0013 7000\nwmOwn0001abc"})
    assert response.status_code == 302 and response["Location"] == _detail(segment)
    assert _members(segment) == {m.pk for m in mine}
    assert "2 contacts added to “名单”." in _messages(response)
    entered = SegmentChange.objects.filter(segment=segment, change=SegmentChange.Change.ENTERED)
    assert set(entered.values_list("contact_id", flat=True)) == {mine[1].pk, mine[2].pk}
    segment.refresh_from_db()
    assert segment.member_count == 3


def test_add_never_adds_another_operators_customer(role_client, operator, contact, other_contact):
    segment = _list_of(operator, [contact])
    response = role_client("operator").post(
        f"/segments/{segment.pk}/members/add/", {"entries": "13900139000"}
    )
    assert response.status_code == 400 and "No line matched" in response.content.decode()
    assert _members(segment) == {contact.pk}


def test_remove_from_own_list(role_client, operator, mine):
    segment = _list_of(operator, mine)
    response = role_client("operator").post(
        f"/segments/{segment.pk}/members/remove/", {"ids": [mine[0].pk, mine[1].pk]}
    )
    assert response.status_code == 302 and response["Location"] == _detail(segment)
    assert _members(segment) == {mine[2].pk}
    assert "2 contacts removed from “名单”." in _messages(response)
    assert SegmentChange.objects.filter(segment=segment, change=SegmentChange.Change.EXITED).count() == 2


def test_remove_with_an_invisible_id_removes_nothing(role_client, manager, contact, other_contact):
    segment = _list_of(manager, [contact, other_contact])
    segment.created_by = contact.owner
    segment.save(update_fields=["created_by"])
    response = role_client("operator").post(
        f"/segments/{segment.pk}/members/remove/",
        {"ids": [contact.pk, other_contact.pk], "next": f"/segments/{segment.pk}/?q=1"},
    )
    assert response.status_code == 302 and response["Location"] == f"/segments/{segment.pk}/?q=1"
    assert _members(segment) == {contact.pk, other_contact.pk}
    assert any("Nothing was removed." in m for m in _messages(response))


def test_a_shared_list_is_read_only_for_the_operator_it_is_shared_with(
    role_client, operator, other_operator, contact, other_contact
):
    segment = _list_of(other_operator, [other_contact])
    segment_share(actor=other_operator, segment=segment, users=[operator])
    c = role_client("operator")
    assert c.get(f"/segments/{segment.pk}/members/add/").status_code == 404
    assert c.post(f"/segments/{segment.pk}/members/add/", {"entries": "13800138000"}).status_code == 404
    assert c.post(f"/segments/{segment.pk}/members/remove/", {"ids": [contact.pk]}).status_code == 404
    assert _members(segment) == {other_contact.pk}


def test_a_dynamic_segment_has_no_add_or_remove(role_client, operator, contact):
    segment = Segment.objects.create(name="规则", kind=SegmentKind.DYNAMIC, created_by=operator)
    c = role_client("operator")
    assert c.get(f"/segments/{segment.pk}/members/add/").status_code == 404
    assert c.post(f"/segments/{segment.pk}/members/remove/", {"ids": [contact.pk]}).status_code == 404


# --- snapshots ------------------------------------------------------------------------------------


def test_snapshot_of_a_segment_shared_with_the_operator(
    role_client, operator, other_operator, contact, other_contact
):
    source = Segment.objects.create(name="活跃", kind=SegmentKind.DYNAMIC, created_by=other_operator)
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=source, contact=c) for c in (contact, other_contact)]
    )
    segment_share(actor=other_operator, segment=source, users=[operator])
    response = role_client("operator").post(f"/segments/{source.pk}/snapshot/", {"name": "活跃快照"})
    copy = Segment.objects.exclude(pk=source.pk).get()
    assert response.status_code == 302 and response["Location"] == _detail(copy)
    assert (copy.name, copy.kind, copy.created_by) == ("活跃快照", SegmentKind.STATIC, operator)
    assert contact.pk in _members(copy)
    assert "Saved today's members as the list “活跃快照”." in _messages(response)


def test_snapshot_without_a_name_is_named_after_the_source(role_client, operator, contact):
    source = _list_of(operator, [contact], name="老客")
    role_client("operator").post(f"/segments/{source.pk}/snapshot/")
    copy = Segment.objects.exclude(pk=source.pk).get()
    assert copy.name.startswith("老客 (snapshot ") and _members(copy) == {contact.pk}


def test_snapshot_of_an_invisible_segment_is_404(role_client, other_operator, other_contact):
    source = _list_of(other_operator, [other_contact])
    assert role_client("operator").post(f"/segments/{source.pk}/snapshot/").status_code == 404
    assert Segment.objects.count() == 1


# --- every view and role -----------------------------------------------------------------------------


EXPECTED = {
    # view: status for operator (who owns the list), other (another operator), manager, admin
    "new": {"operator": 200, "other": 200, "manager": 200, "admin": 200},
    "from_selection": {"operator": 302, "other": 302, "manager": 302, "admin": 302},
    "add": {"operator": 200, "other": 404, "manager": 200, "admin": 200},
    "remove": {"operator": 302, "other": 404, "manager": 302, "admin": 302},
    "snapshot": {"operator": 302, "other": 404, "manager": 302, "admin": 302},
}


def _call(c, view, segment, contact):
    if view == "new":
        return c.get(NEW)
    if view == "from_selection":
        return c.post(FROM_SELECTION, {"ids": [contact.pk], "name": "勾选"})
    if view == "add":
        return c.get(f"/segments/{segment.pk}/members/add/")
    if view == "remove":
        return c.post(f"/segments/{segment.pk}/members/remove/", {"ids": [contact.pk]})
    return c.post(f"/segments/{segment.pk}/snapshot/")


@pytest.mark.parametrize("view", list(EXPECTED))
@pytest.mark.parametrize("role", ["anon", "operator", "other", "manager", "admin"])
def test_permissions_for_every_view_and_role(role_client, operator, contact, view, role):
    segment = _list_of(operator, [contact])
    response = _call(role_client(role), view, segment, contact)
    if role == "anon":
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    else:
        assert response.status_code == EXPECTED[view][role]
    if view == "from_selection" and role == "other":  # not their contact: nothing created
        assert Segment.objects.count() == 1


@pytest.mark.parametrize("view", list(EXPECTED))
def test_a_user_without_a_role_gets_404_everywhere(client, django_user_model, operator, contact, view):
    nobody = django_user_model.objects.create_user(username="nobody", password="x")
    client.force_login(nobody)
    assert _call(client, view, _list_of(operator, [contact]), contact).status_code == 404


@pytest.mark.parametrize(
    "url", [FROM_SELECTION, "/segments/{pk}/members/remove/", "/segments/{pk}/snapshot/"]
)
def test_post_only_views_refuse_get(role_client, operator, contact, url):
    segment = _list_of(operator, [contact])
    assert role_client("operator").get(url.format(pk=segment.pk)).status_code == 405
