"""The whole SOP loop in a browser (issue 5): an admin builds and activates a two-step template, a manager
enrolls a customer from the contact list, the dispatcher (as beat would run it) issues the first task, the
operator finds it in the inbox and marks it sent, and the manager sees the step's counts move."""

import pytest
from playwright.sync_api import expect

from contacts.models import Contact
from sop.dispatch import dispatch_due
from sop.models import SopSettings, SopTemplate, Touchpoint, TouchStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _switch_user(page, login, username):
    page.context.clear_cookies()
    login(username)


def _done_count(page, template) -> str:
    page.goto(f"/sop/results/{template.pk}/")
    return page.get_by_test_id("step-row").first.locator("[data-col=done]").inner_text().strip()


def test_admin_builds_manager_enrolls_operator_sends_manager_sees(page, login, admin_user, manager, operator):
    contact = Contact.objects.create(name="张三", phone="+8613800138000", owner=operator)
    # Whenever CI runs, the touch must go now: no quiet hours for this test (they have their own tests).
    SopSettings.objects.update_or_create(pk=1, defaults={"quiet_start": "00:00", "quiet_end": "00:00"})

    login("admin")
    page.goto("/sop/templates/new/")
    page.fill("#id_name", "新客欢迎")
    page.select_option("#id_trigger", "manual")
    page.locator("[data-testid=save-template]").click()
    for name, day, text in (
        ("欢迎语", "0", "{{ contact.name }}您好，我是{{ owner.name }}"),
        ("破冰", "1", "最近怎么样？"),
    ):
        page.locator("[data-testid=add-step]").click()
        page.fill("#id_name", name)
        page.fill("#id_offset_days", day)
        page.fill("#id_content", text)
        page.locator("[data-testid=save-step]").click()
        expect(page.locator("[data-testid=step]").last).to_contain_text(name)
    page.locator("[data-testid=activate]").click()
    page.locator("[data-testid=activate-submit]").click()
    expect(page.locator("[data-testid=badge-active]")).to_be_visible()
    template = SopTemplate.objects.get(name="新客欢迎")

    _switch_user(page, login, "manager")
    page.goto("/contacts/")
    page.locator(f".row-check[value='{contact.pk}']").check()
    page.get_by_test_id("enroll-selection").click()
    page.get_by_test_id("enroll-selection-template").select_option(str(template.pk))
    page.get_by_test_id("enroll-selection-submit").click()
    expect(page.locator("#toasts, .alert").first).to_be_visible()
    assert template.enrollments.filter(contact=contact).count() == 1
    assert _done_count(page, template) == "0"

    assert dispatch_due().issued == 1  # beat's minute run
    task = Touchpoint.objects.get(step__position=1)
    assert task.status == TouchStatus.OPEN

    _switch_user(page, login, "operator")
    page.goto("/sop/inbox/")
    expect(page.get_by_test_id("today-count")).to_have_text("1")  # due today: not overdue, no red badge
    card = page.get_by_test_id("task")
    expect(card).to_have_count(1)
    expect(card.locator(".sop-message-text")).to_have_text("张三您好，我是李运营")
    card.get_by_test_id("done").click()
    expect(card.get_by_test_id("task-result")).to_be_visible()
    task.refresh_from_db()
    assert task.status == TouchStatus.DONE and task.finished_by == operator

    _switch_user(page, login, "manager")
    assert _done_count(page, template) == "1"
    assert page.js_errors == []
