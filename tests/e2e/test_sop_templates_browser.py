"""SOP templates in the browser: an admin builds a two-step template (trigger fields follow the choice, a
variable chip goes in at the cursor, the preview follows the message) and activates it from the modal."""

import pytest
from playwright.sync_api import expect

from contacts.models import Contact
from sop.models import SopTemplate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_builds_and_activates_a_template(page, login, assert_static_loaded, admin_user, operator):
    Contact.objects.create(name="张三", phone="+8613800138000", owner=operator, city="上海")
    login("admin")
    page.goto("/sop/templates/new/")
    assert_static_loaded()
    expect(page.locator("#id_trigger_tag")).to_be_hidden()
    page.select_option("#id_trigger", "tag_added")
    expect(page.locator("#id_trigger_tag")).to_be_visible()
    page.select_option("#id_trigger", "manual")
    expect(page.locator("#id_trigger_tag")).to_be_hidden()
    page.fill("#id_name", "新客欢迎")
    page.locator("[data-testid=save-template]").click()
    expect(page.locator("[data-testid=problems]")).to_contain_text("Add at least one step.")
    template = SopTemplate.objects.get()

    for name, days in (("欢迎语", "0"), ("破冰", "1")):
        page.locator("[data-testid=add-step]").click()
        page.fill("#id_name", name)
        page.fill("#id_offset_days", days)
        page.fill("#id_content", "您好，")
        page.locator("[data-insert='{{ contact.name }}']").click()
        expect(page.locator("#id_content")).to_have_value("您好，{{ contact.name }}")
        expect(page.locator("[data-testid=preview-text]")).to_have_text("您好，张三")
        page.fill("#id_content", "{{ contact.phone }}")
        expect(page.locator("[data-testid=preview-errors]")).to_contain_text("contact.phone")
        page.fill("#id_content", "您好，{{ contact.name }}")
        page.locator("[data-testid=save-step]").click()
        expect(page.locator("[data-testid=step]").last).to_contain_text(name)

    expect(page.locator("[data-testid=step-timing]")).to_have_text(
        ["Day 0 (the day they enter) at 10:00", "Day 1 at 10:00"]
    )
    page.locator("[data-testid=activate]").click()
    page.locator("[data-testid=activate-submit]").click()
    expect(page.locator("[data-testid=badge-active]")).to_be_visible()
    template.refresh_from_db()
    assert template.active and template.steps.count() == 2
    assert page.js_errors == []
