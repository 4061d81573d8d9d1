"""Export: the contact list as filtered, as CSV or XLSX, by a background task; audited; expiring links."""

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import openpyxl
import pytest
from django.utils import timezone

from accounts.roles import Role
from contacts import exporting
from contacts.exporting import ACTIVITY_HEADERS, BASE_HEADERS, export_cleanup, export_run, export_start
from contacts.models import AuditEntry, Contact, ContactTag, CustomField, ExportJob, Gender, JobStatus, Tag
from tests.conftest import make_user


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def outsider(db, django_user_model):
    """An operator outside the manager's team, with one contact."""
    user = make_user(django_user_model, "outsider", Role.OPERATOR, display_name="外部运营")
    Contact.objects.create(name="外人", phone="+8613700137000", owner=user)
    return user


@pytest.fixture
def rich_contact(contact, tag, tier):
    group_tag = Tag.objects.create(group=tag.group, name="甜", colour="#198754")
    CustomField.objects.create(key="shoe_size", label_zh="鞋码", label_en="Shoe size", kind="number")
    CustomField.objects.create(
        key="hobbies", label_zh="爱好", label_en="Hobbies", kind="multi_choice", choices=["茶", "书", "跑步"]
    )
    Contact.objects.filter(pk=contact.pk).update(
        email="zhang@example.com",
        external_userid="wm-zhang",
        gender=Gender.FEMALE,
        birthday=date(1990, 5, 1),
        tier=tier,
        custom_fields={"shoe_size": "38.5", "hobbies": ["茶", "跑步"]},
        order_count=3,
        total_spent=Decimal("1299.50"),
        last_active_at=timezone.make_aware(
            timezone.datetime(2024, 6, 1, 12, 30), timezone.get_fixed_timezone(0)
        ),
    )
    ContactTag.objects.create(contact=contact, tag=tag)
    ContactTag.objects.create(contact=contact, tag=group_tag)
    contact.refresh_from_db()
    return contact


def _run(user, file_format="csv", query=""):
    job = export_start(actor=user, file_format=file_format, query=query)
    return export_run(export_id=job.pk)


def _csv_rows(job):
    raw = job.file.open("rb").read()
    job.file.close()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 BOM for Excel on Chinese Windows"
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def test_csv_has_importer_headers_and_values(manager, rich_contact, other_contact):
    job = _run(manager)
    assert job.status == JobStatus.DONE and job.processed_rows == job.total_rows == 2
    header, *rows = _csv_rows(job)
    assert header == [*BASE_HEADERS, "鞋码", "爱好", *ACTIVITY_HEADERS]
    assert header[:11] == [
        "姓名",
        "手机号",
        "邮箱",
        "外部联系人ID",
        "性别",
        "生日",
        "城市",
        "来源",
        "归属员工",
        "等级",
        "标签",
    ]
    by_name = {row[0]: row for row in rows}
    assert by_name["张三"] == [
        "张三", "+8613800138000", "zhang@example.com", "wm-zhang", "女", "1990-05-01", "上海", "friend",
        "李运营", "金卡", "甜,辣", "38.5", "茶,跑步", "3", "1299.50", "2024-06-01 20:30:00",
    ]  # fmt: skip
    assert by_name["李四"][8] == "赵运营" and by_name["李四"][10] == "" and by_name["李四"][13] == "0"


def test_xlsx_content(manager, rich_contact):
    job = _run(manager, "xlsx")
    assert job.status == JobStatus.DONE and job.file.name.endswith(".xlsx")
    with job.file.open("rb") as handle:
        book = openpyxl.load_workbook(io.BytesIO(handle.read()), read_only=True)
    rows = list(book.active.iter_rows(values_only=True))
    assert list(rows[0]) == [*BASE_HEADERS, "鞋码", "爱好", *ACTIVITY_HEADERS]
    assert rows[1][:5] == ("张三", "+8613800138000", "zhang@example.com", "wm-zhang", "女")
    assert rows[1][10] == "甜,辣" and rows[1][13] == 3 and Decimal(str(rows[1][14])) == Decimal("1299.5")
    assert len(rows) == 2


def test_formula_like_cells_are_neutralised(manager, operator):
    Contact.objects.create(name='=HYPERLINK("http://x")', owner=operator)
    _header, row = _csv_rows(_run(manager))
    assert row[0] == '\'=HYPERLINK("http://x")'
    job = _run(manager, "xlsx")
    with job.file.open("rb") as handle:
        sheet = openpyxl.load_workbook(io.BytesIO(handle.read())).active
    assert sheet["A2"].data_type == "s" and sheet["A2"].value == '=HYPERLINK("http://x")'


def test_filters_are_respected(manager, rich_contact, other_contact, tag, tier):
    rows = _csv_rows(_run(manager, query=f"tag={tag.pk}&cursor=abc&p=3"))
    assert [r[0] for r in rows[1:]] == ["张三"]
    rows = _csv_rows(_run(manager, query="q=李四"))
    assert [r[0] for r in rows[1:]] == ["李四"]
    rows = _csv_rows(_run(manager, query="tier=none"))
    assert [r[0] for r in rows[1:]] == ["李四"]
    # An invalid filter value is dropped, as on the list page (never a failed export).
    job = _run(manager, query="inactive_days=-5&source=nope")
    assert job.status == JobStatus.DONE and job.total_rows == 2
    assert ExportJob.objects.filter(query__contains="cursor").count() == 0


def test_visibility_is_respected(manager, admin_user, contact, other_contact, outsider):
    names = {r[0] for r in _csv_rows(_run(manager))[1:]}
    assert names == {"张三", "李四"}
    names = {r[0] for r in _csv_rows(_run(admin_user))[1:]}
    assert names == {"张三", "李四", "外人"}


def test_every_export_is_audited(manager, contact, other_contact, tag):
    job = _run(manager, query="q=张")
    entry = AuditEntry.objects.get(action="contacts.exported")
    assert entry.actor == manager and entry.object_id == str(job.pk)
    assert entry.after == {"query": "q=%E5%BC%A0", "rows": 1, "format": "csv"}


def test_progress_updates_every_chunk(manager, operator, monkeypatch):
    Contact.objects.bulk_create([Contact(name=f"客{i}", owner=operator) for i in range(5)])
    monkeypatch.setattr(exporting, "CHUNK_SIZE", 2)
    seen = []
    original = exporting._CsvWriter.write

    def spy(self, row):
        seen.append(ExportJob.objects.values_list("processed_rows", "total_rows").get())
        original(self, row)

    monkeypatch.setattr(exporting._CsvWriter, "write", spy)
    job = _run(manager)
    assert [s[0] for s in seen] == [0, 0, 0, 2, 2, 4]  # header, then rows chunk by chunk
    assert {s[1] for s in seen} == {5}
    assert job.processed_rows == 5


def test_running_twice_is_safe(manager, contact):
    job = _run(manager)
    assert export_run(export_id=job.pk) is None  # a finished job is left alone
    assert AuditEntry.objects.filter(action="contacts.exported").count() == 1


def test_permission_lost_before_run_fails_cleanly(manager, contact):
    job = export_start(actor=manager, file_format="csv", query="")
    manager.groups.clear()
    manager = type(manager).objects.get(pk=manager.pk)
    job = export_run(export_id=job.pk)
    assert job.status == JobStatus.FAILED and not job.file and job.error_message
    assert not AuditEntry.objects.filter(action="contacts.exported").exists()


# --- pages ------------------------------------------------------------------------------------------


def test_start_from_list_polls_then_downloads(role_client, contact, django_capture_on_commit_callbacks):
    client = role_client("manager")
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post("/contacts/exports/new/", {"file_format": "csv", "query": "q=张三&cursor=x"})
    job = ExportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/contacts/exports/{job.pk}/"
    assert job.query == "q=%E5%BC%A0%E4%B8%89" and job.status == JobStatus.QUEUED
    page = client.get(f"/contacts/exports/{job.pk}/")
    assert 'hx-trigger="every 1s"' in page.content.decode()  # a reload keeps polling
    export_run(export_id=job.pk)
    partial = client.get(f"/contacts/exports/{job.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert "every 1s" not in partial and f"/contacts/exports/{job.pk}/download/" in partial
    assert "<html" not in partial
    download = client.get(f"/contacts/exports/{job.pk}/download/")
    assert download.status_code == 200
    local = timezone.localtime(job.created_at)
    assert f'filename="contacts-{local:%Y%m%d-%H%M}.csv"' in download["Content-Disposition"]
    body = b"".join(download.streaming_content).decode("utf-8-sig")
    assert "张三" in body and "李四" not in body


def test_start_runs_task_on_commit(role_client, contact, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        role_client("admin").post("/contacts/exports/new/", {"file_format": "xlsx", "query": ""})
    job = ExportJob.objects.get()
    assert job.status == JobStatus.DONE and job.processed_rows == 1
    assert job.expires_at == job.finished_at + timedelta(hours=24)


def test_bad_format_is_refused(role_client):
    response = role_client("manager").post("/contacts/exports/new/", {"file_format": "pdf"})
    assert response.status_code == 302 and not ExportJob.objects.exists()


def test_expired_link_is_refused_and_cleanup_deletes_file(role_client, manager, contact, settings):
    job = _run(manager)
    path = job.file.path
    ExportJob.objects.filter(pk=job.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    client = role_client("manager")
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"  # the message asserted below is the English source
    response = client.get(f"/contacts/exports/{job.pk}/download/")
    assert response.status_code == 410 and "expired" in response.content.decode().lower()
    assert export_cleanup() == 1
    job.refresh_from_db()
    assert not job.file and not (settings.MEDIA_ROOT / path).exists()
    assert export_cleanup() == 0
    assert client.get(f"/contacts/exports/{job.pk}/download/").status_code == 410
    assert "expired" in client.get(f"/contacts/exports/{job.pk}/").content.decode().lower()


def test_cleanup_keeps_live_files(manager, contact):
    job = _run(manager)
    assert export_cleanup() == 0
    job.refresh_from_db()
    assert job.file


def test_export_pages_per_role(role_client, manager, admin_user, contact):
    job = _run(manager)
    urls = ["/contacts/exports/", f"/contacts/exports/{job.pk}/", f"/contacts/exports/{job.pk}/download/"]
    for url in urls:
        assert role_client("anon").get(url).status_code == 302
        assert role_client("operator").get(url).status_code == 404
        assert role_client("manager").get(url).status_code == 200
        assert role_client("admin").get(url).status_code == 200  # admins may open anyone's export
    assert role_client("operator").post("/contacts/exports/new/", {"file_format": "csv"}).status_code == 404
    assert role_client("anon").post("/contacts/exports/new/", {"file_format": "csv"}).status_code == 302
    assert ExportJob.objects.count() == 1


def test_other_manager_cannot_open_my_export(client, django_user_model, manager, contact):
    job = _run(manager)
    second = make_user(django_user_model, "manager2", Role.MANAGER)
    client.force_login(second)
    assert client.get(f"/contacts/exports/{job.pk}/").status_code == 404
    assert client.get(f"/contacts/exports/{job.pk}/download/").status_code == 404
    assert f"/contacts/exports/{job.pk}/" not in client.get("/contacts/exports/").content.decode()


def test_my_exports_list(role_client, manager, contact):
    job = _run(manager, "xlsx")
    page = role_client("manager").get("/contacts/exports/").content.decode()
    assert f"/contacts/exports/{job.pk}/download/" in page and "Excel" in page


def test_export_button_only_for_exporters(role_client):
    assert 'id="export-form"' not in role_client("operator").get("/contacts/").content.decode()
    for role in ("manager", "admin"):
        page = role_client(role).get("/contacts/?q=x").content.decode()
        assert 'id="export-form"' in page and 'name="query" value="q=x"' in page


def test_operator_cannot_start_export_via_service(operator):
    from contacts.services import NotAllowed

    with pytest.raises(NotAllowed):
        export_start(actor=operator, file_format="csv", query="")


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_an_export_imported_again_changes_nothing(
    manager, rich_contact, other_contact, operator, file_format
):
    """The export's headers and cell formats are the importer's: gender 女/男, source codes, tags joined
    by ",", the owner's display name, custom fields by their Chinese label, the activity columns ignored
    and a formula guard (leading ') stripped again."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from contacts.imports import import_create, import_run, import_start

    Contact.objects.create(name="=SUM(1,2)", phone="+8613600136000", owner=operator, city="-北京")
    before = {
        c.pk: (c.name, c.phone, c.email, c.external_userid, c.gender, c.birthday, c.city, c.source,
               c.owner_id, c.tier_id, c.custom_fields, c.order_count, c.total_spent, c.updated_at)
        for c in Contact.objects.all()
    }  # fmt: skip
    tags_before = set(ContactTag.objects.values_list("contact_id", "tag_id"))
    export = _run(manager, file_format)
    with export.file.open("rb") as handle:
        upload = SimpleUploadedFile(f"export.{file_format}", handle.read())

    job = import_create(actor=manager, upload=upload, kind="contacts")
    assert job.mapping["订单数"] == job.mapping["累计消费"] == job.mapping["最近活跃"] == ""
    assert job.mapping["鞋码"] == "cf:shoe_size" and job.mapping["爱好"] == "cf:hobbies"
    assert import_start(job=job)
    import_run(job_id=job.pk)
    job.refresh_from_db()

    assert (job.status, job.failed_count, job.created_count, job.updated_count) == (JobStatus.DONE, 0, 0, 0)
    assert job.unchanged_count == 3
    after = {
        c.pk: (c.name, c.phone, c.email, c.external_userid, c.gender, c.birthday, c.city, c.source,
               c.owner_id, c.tier_id, c.custom_fields, c.order_count, c.total_spent, c.updated_at)
        for c in Contact.objects.all()
    }  # fmt: skip
    assert after == before
    assert set(ContactTag.objects.values_list("contact_id", "tag_id")) == tags_before
