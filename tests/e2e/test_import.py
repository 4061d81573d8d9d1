"""The whole import flow in a browser: upload, mapping, dry run, progress, result, failed rows download."""

import csv

import pytest
from playwright.sync_api import expect

from contacts.models import Contact
from tests.e2e.conftest import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CSV = "姓名,手机号,城市,备注\n张三,13800138000,上海,老客\n李四,1380013800,北京,\n王五,13900139000,广州,\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_manager_imports_a_file_and_downloads_the_failed_rows(page, login, manager, operator, tmp_path):
    source = tmp_path / "客户.csv"
    source.write_bytes(CSV.encode("gbk"))  # as Excel on Chinese Windows saves it
    login("manager")
    page.goto("/contacts/")
    page.locator("[data-testid=import-link]").click()

    page.locator("input[name=file]").set_input_files(str(source))
    page.get_by_role("button", name="Upload and map columns").click()

    # Mapping: guessed from the Chinese headers, the remark column ignored; change city to ignored too.
    expect(page.locator("#col_0")).to_have_value("name")
    expect(page.locator("#col_1")).to_have_value("phone")
    expect(page.locator("#col_3")).to_have_value("")
    page.locator("#col_2").select_option("")
    page.get_by_role("button", name="Check the first rows").click()

    # Dry run: two new contacts, one error with its reason; nothing saved yet.
    table = page.locator("[data-testid=preview-table]")
    expect(table.locator("tr[data-status=created]")).to_have_count(2)
    expect(table.locator("tr[data-status=failed]")).to_have_count(1)
    expect(table).to_contain_text("Phone “1380013800” is not a valid phone number.")
    # Values as they will be saved (the phone in E.164), the cell as written struck through below.
    expect(table.locator("tr[data-status=created]").first).to_contain_text("+8613800138000")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "import_dry_run.png"), full_page=True)
    assert not Contact.objects.exists()

    page.locator("[data-testid=start-import]").click()
    progress = page.locator("#import-progress")
    expect(progress).to_have_attribute("data-status", "done")
    expect(page.locator("[data-testid=count-created]")).to_have_text("2")
    expect(page.locator("[data-testid=count-failed]")).to_have_text("1")
    # Reloading the page shows the same result (the state lives in the job, not the browser).
    page.reload()
    expect(page.locator("[data-testid=count-created]")).to_have_text("2")
    assert sorted(Contact.objects.values_list("name", "city")) == [("张三", ""), ("王五", "")]

    with page.expect_download() as download_info:
        page.locator("[data-testid=error-download]").click()
    path = download_info.value.path()
    rows = list(csv.reader(open(path, encoding="utf-8-sig")))  # noqa: SIM115, PTH123
    assert rows == [
        ["Row", "姓名", "手机号", "城市", "备注", "Reason"],
        ["3", "李四", "1380013800", "北京", "", "Phone “1380013800” is not a valid phone number."],
    ]
    assert page.js_errors == []
