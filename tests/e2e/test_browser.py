"""The issue's browser journeys, in headless chromium against a live server (see conftest.py).

Data is made with the ORM in each test; the browser logs in through the real login form.
"""

import re
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from contacts.models import Contact, Tag, TagGroup

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ZH_CATALOGUE = Path(__file__).resolve().parents[2] / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.mo"


def result_names(page):
    return page.locator("#results tbody tr td:nth-child(2) a")


def test_operator_searches_filters_and_tags_a_contact(
    page, login, assert_static_loaded, operator, other_operator
):
    taste = TagGroup.objects.create(name="口味偏好")
    spicy = Tag.objects.create(group=taste, name="辣", colour="#dc3545")
    sweet = Tag.objects.create(group=taste, name="甜", colour="#ffc107")
    zhang = Contact.objects.create(name="张三", phone="+8613800138000", owner=operator, city="上海")
    wang = Contact.objects.create(name="王五", phone="+8613800138001", owner=operator)
    Contact.objects.create(name="赵六", phone="+8613800138002", owner=operator)
    Contact.objects.create(name="别人的客户", phone="+8613800138009", owner=other_operator)
    wang.tags.add(spicy)

    login("operator")
    assert_static_loaded()
    page.goto("/contacts/")
    names = result_names(page)
    expect(names).to_have_count(3)  # only the operator's own contacts
    expect(page.locator("#results")).not_to_contain_text("别人的客户")

    # Live search: typing filters the list via htmx and keeps the URL in sync.
    page.evaluate("window.__sameDocument = true")
    page.locator("#id_q").press_sequentially("张三", delay=30)
    expect(page).to_have_url(re.compile(r"[?&]q=" + re.escape(quote("张三"))))
    # The swap replaces #results; it must not nest a second #results inside the old one.
    expect(page.locator("#results")).to_have_count(1)
    expect(names).to_have_count(1)
    expect(names.first).to_have_text("张三")
    expect(page.locator("#results")).not_to_contain_text("王五")
    expect(page.locator("[data-testid=total]")).to_contain_text("1 contact")
    # The form sends every field, empty ones included (tag=, tier=, ...): none of them is "ignored".
    expect(page.locator("#results .alert-warning")).to_have_count(0)

    # Clear the search: everything is back.
    page.locator("#id_q").fill("")
    expect(page).to_have_url(re.compile(r"[?&]q=(&|$)"))
    expect(names).to_have_count(3)
    list_url_before_tag = page.url

    # Filter by tag.
    page.select_option("#id_tag", label="辣")
    expect(page).to_have_url(re.compile(rf"[?&]tag={spicy.pk}(&|$)"))
    expect(names).to_have_count(1)
    expect(names.first).to_have_text("王五")
    expect(page.locator("#results tbody tr").first.locator(".tag-chip")).to_have_text("辣")
    assert page.evaluate("window.__sameDocument") is True, "live filtering reloaded the page"
    # The URL is shareable: loading it afresh shows the same list and filter.
    page.reload()
    expect(names).to_have_text(["王五"])
    expect(page.locator("#id_tag")).to_have_value(str(spicy.pk))

    # The back button restores the previous state: URL and list.
    page.go_back()
    expect(page).to_have_url(list_url_before_tag)
    expect(names).to_have_count(3)
    expect(page.locator("#id_tag")).to_have_value("")

    # Open a contact, add a tag inline, see the chip and the timeline entry without a reload.
    page.locator("#results").get_by_role("link", name="张三").click()
    expect(page).to_have_url(re.compile(rf"/contacts/{zhang.pk}/$"))
    expect(page.locator("h1")).to_contain_text("张三")
    assert_static_loaded()
    expect(page.locator("#timeline")).not_to_contain_text("Added tag")
    page.evaluate("window.__sameDocument = true")
    page.get_by_test_id("edit-tags").click()
    expect(page.locator("#tag-editor")).to_be_visible()
    page.locator(f"label[for=tag-{sweet.pk}]").click()
    expect(page.locator(f"#tag-{sweet.pk}")).to_be_checked()
    page.locator("#tag-editor").get_by_role("button", name="Save tags").click()

    expect(page.locator("#tags [data-testid=tag-chips] .tag-chip")).to_have_text(["甜"])
    expect(page.locator("#timeline")).to_contain_text("Added tag")
    expect(page.locator("#timeline li").first).to_contain_text("甜")
    expect(page.locator("#toasts")).to_contain_text("Tags saved")
    assert page.evaluate("window.__sameDocument") is True, "saving tags reloaded the page"
    assert list(zhang.tags.values_list("name", flat=True)) == ["甜"]
    assert page.js_errors == []


def test_manager_bulk_assigns_an_owner(page, login, assert_static_loaded, operator, other_operator, manager):
    first = Contact.objects.create(name="钱七", phone="+8613700137001", owner=operator)
    second = Contact.objects.create(name="孙八", phone="+8613700137002", owner=operator)
    untouched = Contact.objects.create(name="周九", phone="+8613700137003", owner=operator)

    login("manager")
    page.goto("/contacts/")
    assert_static_loaded()
    expect(result_names(page)).to_have_count(3)

    for contact in (first, second):
        page.locator(f".row-check[value='{contact.pk}']").check()
    expect(page.locator("#selected-count")).to_have_text("2")
    expect(page.locator("#bulk-apply")).to_be_enabled()
    page.select_option("#bulk-action", "assign_owner")
    owner_select = page.locator("#bulk-form select[name=owner]")
    expect(owner_select).to_be_visible()
    owner_select.select_option(label=str(other_operator))
    page.locator("#bulk-apply").click()

    toast = page.locator("#toasts .toast")
    expect(toast).to_be_visible()
    expect(toast).to_contain_text("2 of 2 selected contacts changed")
    for contact, owner in ((first, other_operator), (second, other_operator), (untouched, operator)):
        row = page.locator("#results tbody tr").filter(has=page.get_by_role("link", name=contact.name))
        expect(row.locator("td:nth-child(6)")).to_have_text(str(owner))

    owners = dict(Contact.objects.values_list("name", "owner__username"))
    assert owners == {"钱七": "other", "孙八": "other", "周九": "operator"}
    assert page.js_errors == []


def test_language_switcher(page, login, assert_static_loaded, operator):
    assert ZH_CATALOGUE.exists(), f"{ZH_CATALOGUE} is missing: run `make setup` (it compiles the messages)"

    def expect_active(code: str, other: str):
        expect(page.locator("html")).to_have_attribute("lang", code)
        expect(page.get_by_test_id(f"lang-{code}")).to_have_class(re.compile(r"\bbtn-success\b"))
        expect(page.get_by_test_id(f"lang-{other}")).not_to_have_class(re.compile(r"\bbtn-success\b"))

    login("operator")  # the browser asks for English (Accept-Language: en-US)
    page.goto("/contacts/")
    assert_static_loaded()
    nav = page.locator("#mainNav .navbar-nav")
    expect_active("en", "zh-hans")
    expect(nav).to_contain_text("Contacts")

    page.get_by_test_id("lang-zh-hans").click()
    expect_active("zh-hans", "en")
    expect(page).to_have_url(re.compile(r"/contacts/$"))  # the switcher comes back to the same page
    expect(nav).to_contain_text("客户")
    expect(nav).to_contain_text("概览")
    expect(nav).not_to_contain_text("Contacts")
    expect(page.locator("h1")).to_contain_text("客户")

    page.get_by_test_id("lang-en").click()
    expect_active("en", "zh-hans")
    expect(page).to_have_url(re.compile(r"/contacts/$"))
    expect(nav).to_contain_text("Contacts")
    expect(nav).not_to_contain_text("客户")

    page.get_by_test_id("lang-zh-hans").click()
    expect_active("zh-hans", "en")
    expect(nav).to_contain_text("客户")
    # The choice sticks (language cookie) on the next page, whatever the browser asks for.
    page.goto("/")
    expect_active("zh-hans", "en")
    expect(page.locator("h1")).to_contain_text("概览")
    assert page.js_errors == []


def test_operator_gets_404_for_another_operators_contact(page, login, operator, other_operator):
    theirs = Contact.objects.create(name="李四", phone="+8613900139000", owner=other_operator)

    login("operator")
    response = page.goto(f"/contacts/{theirs.pk}/")
    assert response is not None and response.status == 404
    expect(page.locator("body")).not_to_contain_text("李四")
    expect(page.locator("body")).not_to_contain_text("+8613900139000")


def test_next_page_swaps_the_results_in_place(page, login, operator, settings):
    settings.CONTACT_PAGE_SIZE = 5  # the live server runs in this process and sees the override
    Contact.objects.bulk_create(
        [Contact(name=f"客户{i:02d}", phone=f"+86137000{i:05d}", owner=operator) for i in range(7)]
    )

    login("operator")
    page.goto("/contacts/")
    expect(result_names(page)).to_have_count(5)
    page.evaluate("window.__sameDocument = true")
    page.get_by_test_id("next-page").click()
    expect(page).to_have_url(re.compile(r"[?&]p=2(&|$)"))
    expect(page.locator("#results")).to_have_count(1)
    expect(result_names(page)).to_have_text(["客户01", "客户00"])
    assert page.evaluate("window.__sameDocument") is True, "the next page reloaded the whole page"
    page.go_back()
    expect(result_names(page)).to_have_count(5)
    assert page.js_errors == []
