"""Import pages: permissions for every page and role, the whole flow through the views, htmx progress."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation

from contacts.imports import import_create
from contacts.models import Contact, ImportJob, JobStatus

CSV = "姓名,手机号,城市\n甲,13800000001,上海\n乙,12345,北京\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def english(client):
    """The messages asserted below are the English source; the default language is Chinese."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    with translation.override("en"):
        yield


def make_job(user, content=CSV):
    return import_create(actor=user, upload=SimpleUploadedFile("c.csv", content.encode()), kind="contacts")


@pytest.mark.parametrize(
    ("role", "status"), [("anon", 302), ("operator", 404), ("manager", 200), ("admin", 200)]
)
def test_list_page_permissions(role_client, role, status):
    response = role_client(role).get(reverse("import_list"))
    assert response.status_code == status
    if role == "anon":
        assert "/accounts/login/" in response["Location"]


# What the creator (and an admin) gets for a job still waiting for its mapping: the detail page sends them to
# the mapping, and there is no failed-rows file yet.
CREATOR_STATUS = {"import_mapping": 200, "import_preview": 200, "import_detail": 302, "import_errors": 404}


@pytest.mark.parametrize("page", list(CREATOR_STATUS))
@pytest.mark.parametrize("role", ["anon", "operator", "other", "manager", "admin"])
def test_job_pages_are_for_the_creator_and_admins(role_client, manager, page, role):
    job = make_job(manager)
    response = role_client(role).get(reverse(page, args=[job.pk]))
    if role == "anon":
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    elif role in ("operator", "other"):
        assert response.status_code == 404
    else:
        assert response.status_code == CREATOR_STATUS[page]


def test_another_manager_cannot_see_the_job(client, manager, django_user_model):
    from django.contrib.auth.models import Group

    other = django_user_model.objects.create_user(username="m2", password="x")
    other.groups.add(Group.objects.get(name="Manager"))
    job = make_job(manager)
    client.force_login(other)
    assert client.get(reverse("import_mapping", args=[job.pk])).status_code == 404
    assert job not in client.get(reverse("import_list")).context["jobs"]


def test_import_button_only_with_permission(role_client):
    assert b'data-testid="import-link"' not in role_client("operator").get(reverse("contact_list")).content
    assert b'data-testid="import-link"' in role_client("manager").get(reverse("contact_list")).content


def test_whole_flow_through_the_views(client, manager, operator, django_capture_on_commit_callbacks):
    client.force_login(manager)
    response = client.post(
        reverse("import_list"), {"kind": "contacts", "file": SimpleUploadedFile("c.csv", CSV.encode())}
    )
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("import_mapping", args=[job.pk])

    page = client.get(reverse("import_mapping", args=[job.pk]))
    assert page.status_code == 200
    assert 'value="name" selected' in page.content.decode()

    # Ignoring the name column is refused with the reason; the mapping is not saved.
    bad = client.post(
        reverse("import_mapping", args=[job.pk]), {"col_0": "", "col_1": "phone", "col_2": "city"}
    )
    assert bad.status_code == 400
    assert "Choose the column with the contact&#x27;s name." in bad.content.decode()

    response = client.post(
        reverse("import_mapping", args=[job.pk]), {"col_0": "name", "col_1": "phone", "col_2": ""}
    )
    assert response["Location"] == reverse("import_preview", args=[job.pk])
    preview = client.get(response["Location"])
    assert [row["row"].status for row in preview.context["rows"]] == ["created", "failed"]
    assert "Phone “12345” is not a valid phone number." in preview.content.decode()
    # The value as it will be saved, and the cell as written when they differ.
    assert '<span data-testid="saved-value">+8613800000001</span>' in preview.content.decode()
    assert "<s>13800000001</s>" in preview.content.decode()
    assert not Contact.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("import_preview", args=[job.pk]))
    assert response["Location"] == reverse("import_detail", args=[job.pk])
    job.refresh_from_db()
    assert (job.status, job.created_count, job.failed_count) == (JobStatus.DONE, 1, 1)
    assert Contact.objects.get().city == ""  # the city column was set to ignore

    detail = client.get(reverse("import_detail", args=[job.pk]))
    assert b'data-testid="error-download"' in detail.content
    fragment = client.get(reverse("import_detail", args=[job.pk]), headers={"HX-Request": "true"})
    assert fragment.content.decode().lstrip().startswith('<div class="card" id="import-progress"')
    assert "hx-trigger" not in fragment.content.decode()  # done: polling stops

    download = client.get(reverse("import_errors", args=[job.pk]))
    body = b"".join(download.streaming_content).decode("utf-8-sig")
    assert download["Content-Disposition"].startswith("attachment")
    assert body.splitlines() == [
        "Row,姓名,手机号,城市,Reason",
        "3,乙,12345,北京,Phone “12345” is not a valid phone number.",
    ]

    # A started job's mapping and preview pages lead to its progress page.
    assert client.get(reverse("import_mapping", args=[job.pk]))["Location"] == reverse(
        "import_detail", args=[job.pk]
    )


def test_running_job_polls(client, admin_user):
    job = make_job(admin_user)
    ImportJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, processed_rows=1, total_rows=2)
    client.force_login(admin_user)
    fragment = client.get(
        reverse("import_detail", args=[job.pk]), headers={"HX-Request": "true"}
    ).content.decode()
    assert 'hx-trigger="every 1s"' in fragment and "50%" in fragment


def test_upload_errors_are_shown_on_the_form(client, manager):
    client.force_login(manager)
    response = client.post(
        reverse("import_list"), {"kind": "contacts", "file": SimpleUploadedFile("e.csv", b"")}
    )
    assert response.status_code == 400
    assert not ImportJob.objects.exists()
    response = client.post(
        reverse("import_list"), {"kind": "contacts", "file": SimpleUploadedFile("x.csv", b"\x00\x01\x02PNG")}
    )
    assert "is not a CSV or Excel (.xlsx) file." in response.content.decode()
