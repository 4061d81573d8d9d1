"""The SOP inbox and team tasks in a real browser: the overdue badge, Copy, "Sent" through htmx with the card
updated in place and the badge following; a manager reassigns an overdue task."""

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from sop.models import Touchpoint, TouchStatus
from sop.selectors import day_bounds
from tests.e2e.conftest import browser, login, page  # noqa: F401  (the e2e fixtures)

from .factories import make_template, open_task

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_operator_marks_an_overdue_task_sent(page, login, operator, contact):  # noqa: F811
    template = make_template("新客欢迎")
    start, _end = day_bounds(operator)
    task = open_task(template, contact, due_at=start - timedelta(hours=2), rendered="张三您好，欢迎加入")
    open_task(template, contact, position=2, due_at=start + timedelta(minutes=1), rendered="第二条")

    login("operator")
    badge = page.locator("[data-testid=nav-sop] > a [data-testid=sop-badge]")
    expect(badge).to_have_text("1")
    page.locator("[data-testid=nav-sop] > a").click()
    page.get_by_test_id("nav-sop-inbox").click()
    expect(page.locator("h1")).to_contain_text("SOP inbox")

    card = page.locator(f"#task-{task.pk}")
    expect(card.locator(".sop-message-text")).to_have_text("张三您好，欢迎加入")
    card.locator(".sop-copy").click()
    expect(page.locator("#toasts")).to_contain_text("Copied to the clipboard.")

    card.locator("input[name=outcome]").fill("客户回了表情")
    card.get_by_test_id("done").click()
    expect(card.get_by_test_id("task-result")).to_contain_text("客户回了表情")
    expect(page.locator("#toasts")).to_contain_text("Marked as sent.")
    expect(badge).to_be_hidden()
    assert Touchpoint.objects.get(pk=task.pk).status == TouchStatus.DONE
    assert page.js_errors == []


def test_manager_reassigns_an_overdue_task(page, login, operator, other_operator, contact):  # noqa: F811
    template = make_template("新客欢迎")
    start, _end = day_bounds(operator)
    task = open_task(template, contact, due_at=start - timedelta(days=1))

    login("manager")
    page.goto("/sop/team/")
    expect(page.get_by_test_id("team-task")).to_have_count(1)
    page.locator(f"#t{task.pk}").check()
    page.locator("#reassign-to").select_option(label=str(other_operator))
    page.get_by_test_id("reassign").click()
    expect(page.locator("#toasts")).to_contain_text("1 of 1 tasks given to")
    assert Touchpoint.objects.get(pk=task.pk).assignee == other_operator
    assert page.js_errors == []
