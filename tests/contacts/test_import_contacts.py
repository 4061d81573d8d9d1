"""Contact import: reading (encodings, formats, bad files), mapping, the upsert engine and the job."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import translation
from openpyxl import Workbook

from contacts.imports import (
    ImportFileError,
    import_create,
    import_preview,
    import_run,
    import_set_mapping,
    import_start,
)
from contacts.imports.mapping import guess_mapping
from contacts.models import (
    AuditEntry,
    Contact,
    ContactTag,
    CustomField,
    ImportJob,
    JobStatus,
    Tag,
    TagGroup,
    Tier,
)

HEADER = "姓名,手机号,邮箱,标签,等级,生日,城市,来源,归属员工\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def english():
    """The reports are asserted word for word; the default language is Chinese."""
    with translation.override("en"):
        yield


def upload(content: bytes | str, name="contacts.csv", encoding="utf-8"):
    data = content.encode(encoding) if isinstance(content, str) else content
    return SimpleUploadedFile(name, data)


def run_import(
    actor, content, *, kind="contacts", name="contacts.csv", encoding="utf-8", mapping=None, chunk_rows=None
):
    job = import_create(actor=actor, upload=upload(content, name, encoding), kind=kind)
    if mapping:
        assert import_set_mapping(job=job, mapping={**job.mapping, **mapping}) == []
    assert import_start(job=job)
    import_run(job_id=job.pk)  # what the task does once the start commits (see test_start_queues_the_task)
    job.refresh_from_db()
    return job


def error_rows(job) -> list[list[str]]:
    with job.error_file.open("rb") as fh:
        return list(csv.reader(io.StringIO(fh.read().decode("utf-8-sig"))))


def test_guess_mapping_from_chinese_and_english_headers(db):
    CustomField.objects.create(key="shoe_size", label_zh="鞋码", label_en="Shoe size", kind="number")
    headers = ["姓名", "手机号", "E-mail", "Tags", "会员等级", "生日", "City", "来源", "归属员工", "外部联系人ID", "性别",
               "鞋码", "备注", "电话"]  # fmt: skip
    mapping = guess_mapping(headers, "contacts", list(CustomField.objects.all()))
    assert mapping == {
        "姓名": "name", "手机号": "phone", "E-mail": "email", "Tags": "tags", "会员等级": "tier", "生日": "birthday",
        "City": "city", "来源": "source", "归属员工": "owner", "外部联系人ID": "external_userid", "性别": "gender",
        "鞋码": "cf:shoe_size", "备注": "", "电话": "",  # a second phone column is not guessed twice
    }  # fmt: skip


def test_gbk_file_imports_with_chinese_intact(admin_user, operator):
    job = run_import(
        admin_user, HEADER + "张三,138 0013 8000,,甜、辣,,1990/5/1,上海,门店,operator\n", encoding="gbk"
    )
    assert job.encoding == "gb18030"
    assert (job.status, job.created_count, job.failed_count) == (JobStatus.DONE, 1, 0)
    contact = Contact.objects.get()
    assert (contact.name, contact.phone, contact.city, contact.source) == (
        "张三",
        "+8613800138000",
        "上海",
        "store",
    )
    assert contact.owner == operator
    assert str(contact.birthday) == "1990-05-01"
    assert sorted(contact.tags.values_list("name", flat=True)) == ["甜", "辣"]
    assert Tag.objects.get(name="甜").group.name == "导入"


def test_utf8_bom_file_imports_and_the_header_has_no_bom(admin_user):
    job = run_import(admin_user, ("\ufeff" + HEADER + "李四,13900139000,li@example.com,,,,北京,,\n"))
    assert job.headers[0] == "姓名"
    assert job.mapping["姓名"] == "name"
    assert Contact.objects.get().email == "li@example.com"


def test_xlsx_file_streams_rows(admin_user):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Name", "Mobile", "Email", "Birthday"])
    sheet.append(["王五", 13700137000, "wang@example.com", "1985-12-31"])  # a phone typed into a number cell
    sheet.append([None, None, None, None])  # blank rows are skipped
    sheet.append(["赵六", "13600136000", None, None])
    buffer = io.BytesIO()
    workbook.save(buffer)
    job = run_import(admin_user, buffer.getvalue(), name="sheet.xlsx")
    assert (job.file_format, job.created_count, job.failed_count) == ("xlsx", 2, 0)
    assert set(Contact.objects.values_list("phone", flat=True)) == {"+8613700137000", "+8613600136000"}


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "empty.csv", "The file is empty."),
        (b"   \n\n", "blank.csv", "The file is empty."),
        ("姓名,手机号\n".encode(), "header.csv", "The file has a header row but no data rows."),
        (b"%PDF-1.4\x00\x01\x02binary", "report.csv", "is not a CSV or Excel (.xlsx) file."),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1old", "old.xls", "Old Excel files (.xls) cannot be read"),
        (b"PK\x03\x04not really a zip", "fake.xlsx", "not a valid Excel (.xlsx) workbook"),
    ],
)
def test_bad_files_are_refused_before_any_work(admin_user, content, name, message):
    with pytest.raises(
        ImportFileError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")
    ):
        import_create(actor=admin_user, upload=upload(content, name), kind="contacts")
    assert not ImportJob.objects.exists()


def test_oversized_file_is_refused_with_the_limit(admin_user, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 100
    with pytest.raises(ImportFileError, match="the largest file you can import is 100"):
        import_create(actor=admin_user, upload=upload(HEADER + "x" * 200), kind="contacts")
    assert not ImportJob.objects.exists()


def test_missing_required_columns_are_reported(admin_user):
    job = import_create(actor=admin_user, upload=upload("城市,备注\n上海,x\n"), kind="contacts")
    errors = import_set_mapping(job=job, mapping=job.mapping)
    assert errors == [
        "Choose the column with the contact's name.",
        "Choose at least one column to match contacts by: external user ID, phone or email.",
    ]
    job.refresh_from_db()
    assert job.mapping == {"城市": "city", "备注": ""}  # the bad mapping was not saved


MALFORMED = (
    HEADER
    + "张一,13800000001,a1@example.com,甜,金卡,1990-01-01,上海,好友,operator\n"  # 2 ok
    + "张二,1380000000,,,,,,,\n"  # 3 bad phone (10 digits)
    + "张三,13800000003,,,,2023-02-30,,,\n"  # 4 impossible date
    + "张四,13800000004,,,,,,,nobody\n"  # 5 unknown owner
    + "张五,13800000005,,,钻石,,,,\n"  # 6 unknown tier
    + "张六,13800000006,a6@example.com,,,,,,李运营\n"  # 7 ok, owner by display name
    + ",13800000007,,,,,,,\n"  # 8 no name
    + "张八,,,,,,,,\n"  # 9 no key
    + "张九,13800000009,not-an-email,,,,,,\n"  # 10 bad email
    + "张十,13800000010,,,,,,火星,\n"  # 11 unknown source
    + "".join(f"客户{i},139000000{i:02d},,辣,,,北京,,\n" for i in range(10))  # 12..21 ok
)
MALFORMED_REPORT = [
    ["3", "张二", "1380000000", "", "", "", "", "", "", "", "Phone “1380000000” is not a valid phone number."],
    ["4", "张三", "13800000003", "", "", "", "2023-02-30", "", "", "", "Birthday “2023-02-30” is not a valid date."],
    ["5", "张四", "13800000004", "", "", "", "", "", "", "nobody", "Unknown owner “nobody”."],
    ["6", "张五", "13800000005", "", "", "钻石", "", "", "", "", "Unknown tier “钻石”."],
    ["8", "", "13800000007", "", "", "", "", "", "", "", "The name is empty."],
    ["9", "张八", "", "", "", "", "", "", "", "", "No external user ID, phone or email to match the contact by."],
    ["10", "张九", "13800000009", "not-an-email", "", "", "", "", "", "",
     "Email “not-an-email” is not a valid email address."],
    ["11", "张十", "13800000010", "", "", "", "", "", "火星", "", "Unknown source “火星”."],
]  # fmt: skip


@pytest.mark.parametrize("chunk_rows", [3, 10_000])
def test_malformed_rows_corpus_gives_the_exact_report(admin_user, operator, tier, chunk_rows, monkeypatch):
    monkeypatch.setattr("contacts.imports.jobs.CHUNK_ROWS", chunk_rows)
    job = run_import(admin_user, MALFORMED)
    assert (job.status, job.created_count, job.updated_count, job.unchanged_count, job.failed_count) == (
        JobStatus.DONE, 12, 0, 0, 8,
    )  # fmt: skip
    assert job.processed_rows == job.total_rows == 20
    rows = error_rows(job)
    assert rows[0] == ["Row", *HEADER.strip().split(","), "Reason"]
    assert rows[1:] == MALFORMED_REPORT
    # Valid rows were imported whole; failed rows left nothing behind.
    assert Contact.objects.count() == 12
    assert not Contact.objects.filter(
        name__in=["张二", "张三", "张四", "张五", "张八", "张九", "张十"]
    ).exists()
    first = Contact.objects.get(phone="+8613800000001")
    assert (first.tier, first.owner, first.email) == (tier, operator, "a1@example.com")
    assert Contact.objects.get(phone="+8613800000006").owner == operator
    # One audit entry for the job, with the counts.
    entry = AuditEntry.objects.get(action="import.finished")
    assert entry.after["created"] == 12 and entry.after["failed"] == 8 and entry.actor == admin_user


def test_importing_the_same_file_twice_changes_nothing(admin_user, operator, tier):
    run_import(admin_user, MALFORMED)
    before = list(Contact.objects.order_by("id").values())
    tags_before = set(ContactTag.objects.values_list("contact_id", "tag_id"))
    again = run_import(admin_user, MALFORMED)
    assert (again.created_count, again.updated_count, again.unchanged_count, again.failed_count) == (
        0,
        0,
        12,
        8,
    )
    assert list(Contact.objects.order_by("id").values()) == before  # updated_at included
    assert set(ContactTag.objects.values_list("contact_id", "tag_id")) == tags_before


def test_upsert_matches_by_external_id_then_phone_then_email(admin_user):
    by_ext = Contact.objects.create(name="甲", external_userid="wm_1", phone="+8613800000001")
    by_phone = Contact.objects.create(name="乙", phone="+8613800000002", city="上海")
    by_email = Contact.objects.create(name="丙", email="c@example.com")
    content = (
        "姓名,外部联系人ID,手机号,邮箱,城市\n"
        "甲二,wm_1,13800000001,,\n"  # ext id wins: renamed
        "乙,wm_2,13800000002,,\n"  # phone match: gains the external id, empty city kept
        "丙,,,C@Example.com,杭州\n"  # email match (case-insensitive), city set
        "丁,,13800000004,c@example.com,\n"  # has a phone: never matched by email alone -> new contact
    )
    job = run_import(admin_user, content)
    assert (job.created_count, job.updated_count, job.unchanged_count, job.failed_count) == (1, 3, 0, 0)
    by_ext.refresh_from_db(), by_phone.refresh_from_db(), by_email.refresh_from_db()
    assert by_ext.name == "甲二"
    assert (by_phone.external_userid, by_phone.city) == ("wm_2", "上海")
    assert by_email.city == "杭州"
    assert Contact.objects.get(phone="+8613800000004").source == "import"


def test_conflicting_keys_and_duplicates_within_the_file(admin_user):
    Contact.objects.create(name="甲", external_userid="wm_1", phone="+8613800000001")
    Contact.objects.create(name="乙", phone="+8613800000002")
    content = (
        "姓名,外部联系人ID,手机号\n"
        "甲,wm_1,13800000002\n"  # phone belongs to 乙
        "新,wm_9,13800000009\n"
        "新新,wm_9,13800000009\n"  # same keys again in the same file: an update of the row above
        "丙,wm_3,13800000001\n"  # phone matched 甲, who has another external id
    )
    job = run_import(admin_user, content)
    assert (job.created_count, job.updated_count, job.failed_count) == (1, 1, 2)
    assert [row[0] for row in error_rows(job)[1:]] == ["2", "5"]
    assert error_rows(job)[1][-1] == "Phone +8613800000002 already belongs to another contact."
    assert (
        error_rows(job)[2][-1] == "The contact with this phone or email has another external user ID (wm_1)."
    )
    assert Contact.objects.get(external_userid="wm_9").name == "新新"


def test_tags_are_added_never_removed_and_reuse_existing_names(admin_user, tag):
    contact = Contact.objects.create(name="甲", phone="+8613800000001")
    other = Tag.objects.create(group=TagGroup.objects.create(name="其他"), name="老客")
    contact.tags.add(other)
    job = run_import(admin_user, "姓名,手机号,标签\n甲,13800000001,辣；新客 , 辣\n")
    assert job.updated_count == 1
    assert set(contact.tags.values_list("name", flat=True)) == {"老客", "辣", "新客"}
    assert Tag.objects.filter(name="辣").count() == 1  # the existing tag, not a new one in 导入
    again = run_import(admin_user, "姓名,手机号,标签\n甲,13800000001,辣,新客\n")
    assert (again.updated_count, again.unchanged_count) == (0, 1)


def test_custom_fields_validated_merged_and_required_for_new_contacts(admin_user):
    CustomField.objects.create(key="shoe_size", label_zh="鞋码", label_en="Shoe size", kind="number")
    CustomField.objects.create(key="level", label_zh="段位", label_en="Level", kind="choice", choices=["A", "B"],
                               required=True)  # fmt: skip
    existing = Contact.objects.create(
        name="甲", phone="+8613800000001", custom_fields={"level": "A", "x": "keep"}
    )
    content = "姓名,手机号,鞋码,段位\n甲,13800000001,42.0,\n乙,13800000002,41,B\n丙,13800000003,big,A\n丁,13800000004,40,\n"
    job = run_import(admin_user, content)
    assert (job.created_count, job.updated_count, job.failed_count) == (1, 1, 2)
    existing.refresh_from_db()
    assert existing.custom_fields == {"level": "A", "x": "keep", "shoe_size": "42"}
    assert Contact.objects.get(name="乙").custom_fields == {"shoe_size": "41", "level": "B"}
    reasons = [row[-1] for row in error_rows(job)[1:]]
    assert reasons[0].startswith("鞋码: ") and "big" in reasons[0]
    assert reasons[1] == "A new contact needs a value for: 段位."


def test_manager_can_only_assign_owners_in_their_team_and_touch_team_contacts(
    manager, operator, django_user_model
):
    outsider = django_user_model.objects.create_user(username="outsider", password="x", display_name="外人")
    Contact.objects.create(name="外人的客户", phone="+8613800000009", owner=outsider)
    content = "姓名,手机号,归属员工\n甲,13800000001,operator\n乙,13800000002,outsider\n丙,13800000009,\n"
    job = run_import(manager, content)
    assert (job.created_count, job.failed_count) == (1, 2)
    assert [row[-1] for row in error_rows(job)[1:]] == [
        "Owner “outsider” is not in your team.",
        "This row matches a contact outside your team.",
    ]
    assert Contact.objects.get(name="甲").owner == operator


def test_preview_shows_statuses_and_saves_nothing(admin_user):
    Contact.objects.create(name="甲", phone="+8613800000001")
    job = import_create(
        actor=admin_user,
        upload=upload("姓名,手机号,标签\n甲,13800000001,\n乙,13800000002,新标签\n丙,123,\n"),
        kind="contacts",
    )
    rows = import_preview(job=job)
    assert [(row.line, row.status) for row in rows] == [(2, "unchanged"), (3, "created"), (4, "failed")]
    assert rows[2].reason == "Phone “123” is not a valid phone number."
    assert Contact.objects.count() == 1 and not Tag.objects.exists()
    job.refresh_from_db()
    assert job.status == JobStatus.PENDING


def test_preview_shows_values_as_they_will_be_saved(admin_user, operator, tier):
    job = import_create(
        actor=admin_user,
        upload=upload(
            HEADER + "王五,138 0000 0003,Wang@Example.COM,辣；甜,金卡,1990/5/1,杭州,小程序,operator\n"
        ),
        kind="contacts",
    )
    (row,) = import_preview(job=job)
    assert row.status == "created"
    assert row.saved == {
        "name": "王五", "phone": "+8613800000003", "email": "wang@example.com", "tags": "辣、甜", "tier": "金卡",
        "birthday": "1990-05-01", "city": "杭州", "source": "Mini program (小程序)", "owner": str(operator),
    }  # fmt: skip


def test_run_twice_and_finished_jobs_do_nothing(admin_user):
    job = run_import(admin_user, "姓名,手机号\n甲,13800000001\n")
    assert job.status == JobStatus.DONE
    assert import_run(job_id=job.pk) is None  # a second delivery of the task
    job.refresh_from_db()
    assert (job.created_count, job.processed_rows) == (1, 1)
    assert AuditEntry.objects.filter(action="import.finished").count() == 1


def test_portable_writer_gives_the_same_result_as_the_default(admin_user, operator, tier):
    """On PostgreSQL the default writer is COPY-based; both must leave the same rows behind."""
    job = run_import(admin_user, MALFORMED)
    copy_rows = list(Contact.objects.order_by("phone").values_list("name", "phone", "email", "owner_id", "tier_id",
                                                                    "birthday", "city", "source"))  # fmt: skip
    copy_tags = sorted(ContactTag.objects.values_list("contact__phone", "tag__name"))
    Contact.objects.all().delete()
    second = import_create(actor=admin_user, upload=upload(MALFORMED), kind="contacts")
    ImportJob.objects.filter(pk=second.pk).update(status=JobStatus.QUEUED)
    import_run(job_id=second.pk, portable=True)
    second.refresh_from_db()
    assert (second.created_count, second.failed_count) == (job.created_count, job.failed_count)
    assert (
        list(
            Contact.objects.order_by("phone").values_list(
                "name", "phone", "email", "owner_id", "tier_id", "birthday", "city", "source"
            )
        )  # fmt: skip
        == copy_rows
    )
    assert sorted(ContactTag.objects.values_list("contact__phone", "tag__name")) == copy_tags
    assert connection.vendor in ("postgresql", "sqlite")


def test_unknown_tier_names_are_case_insensitive(admin_user):
    Tier.objects.create(name="Gold", rank=5)
    job = run_import(admin_user, "name,phone,tier\nA,13800000001,gold\n")
    assert job.created_count == 1 and Contact.objects.get().tier.name == "Gold"


def test_start_queues_the_task_once_on_commit(admin_user, django_capture_on_commit_callbacks):
    job = import_create(actor=admin_user, upload=upload("姓名,手机号\n甲,13800000001\n"), kind="contacts")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert import_start(job=job)
        assert not import_start(job=job)  # a double click queues nothing more
    assert len(callbacks) == 1
    job.refresh_from_db()
    assert (job.status, job.created_count) == (JobStatus.DONE, 1)  # eager Celery ran the task


def test_the_worker_writes_reasons_in_the_uploaders_language(admin_user):
    """The task runs in a worker whose language is the site default; the uploader read the page in Chinese."""
    with translation.override("zh-hans"):
        job = import_create(actor=admin_user, upload=upload("姓名,手机号\n甲,123\n"), kind="contacts")
    assert import_start(job=job)
    import_run(job_id=job.pk)  # under the test's English
    job.refresh_from_db()
    assert error_rows(job) == [
        ["行号", "姓名", "手机号", "原因"],
        ["2", "甲", "123", "手机号“123”格式无效。"],
    ]
