"""The step message sandbox (sop.content): what is caught at save time, and what a customer gets."""

from datetime import date

import pytest
from django.utils import timezone

from contacts.models import Contact, CustomField, CustomFieldKind
from sop.content import contact_contexts, content_errors, render_content, variable_help


@pytest.fixture
def vip_field(db):
    return CustomField.objects.create(
        key="vip_no", label_zh="会员号", label_en="VIP no.", kind=CustomFieldKind.TEXT
    )


def test_plain_and_known_variables_are_fine(db):
    assert content_errors("您好 {{ contact.name }}，我是{{ owner.name }}。{{ unsubscribe }}") == []
    assert (
        content_errors(
            "{% if contact.tier %}{{ contact.tier }}会员{% endif %}{{ contact.city|default:'朋友' }}"
        )
        == []
    )


def test_empty_message_is_an_error(db):
    assert content_errors("   ") == ["Write the message."]


def test_syntax_error_has_a_message(db):
    errors = content_errors("{% if contact.name %}没有结束")
    assert len(errors) == 1 and errors[0].startswith("Template syntax error:")
    assert "endif" in errors[0]
    assert content_errors("{{ contact.name|nosuchfilter }}")[0].startswith("Template syntax error:")


@pytest.mark.parametrize(
    "content,name",
    [
        ("{{ contact.phone }}", "contact.phone"),
        ("{{ contact }}", "contact"),
        ("{{ secret }}", "secret"),
        ("{{ owner.password }}", "owner.password"),
        ("{{ contact.name.upper }}", "contact.name.upper"),
        ("{% if contact.email %}x{% endif %}", "contact.email"),
        ("{{ contact.name|default:contact.phone }}", "contact.phone"),
        ("{% firstof contact.wechat contact.name %}", "contact.wechat"),
        ("{{ unsubscribe.x }}", "unsubscribe.x"),
    ],
)
def test_unknown_variables_are_named(db, content, name):
    errors = content_errors(content)
    assert errors == [f"Unknown variable “{name}”. Use one of the variables listed under the message."]


def test_custom_fields_are_variables_while_active(db, vip_field):
    assert content_errors("会员号 {{ custom.vip_no }}") == []
    assert content_errors("{{ custom.nope }}") != []
    assert content_errors("{{ custom }}") != []
    vip_field.archived_at = timezone.now()
    vip_field.save()
    assert content_errors("会员号 {{ custom.vip_no }}") != []


@pytest.mark.parametrize(
    "content",
    [
        "{% load static %}{% static 'x' %}",
        "{% include 'base.html' %}",
        "{% url 'home' %}",
        "{% extends 'base.html' %}",
        "{% debug %}",
        "{% csrf_token %}",
    ],
)
def test_forbidden_tags_are_syntax_errors(db, content):
    errors = content_errors(content)
    assert errors and errors[0].startswith("Template syntax error:")


def test_for_and_with_introduce_local_names(db):
    assert content_errors("{% for ch in contact.name %}{{ ch }}{{ forloop.counter }}{% endfor %}") == []
    assert content_errors("{% with n=contact.name %}{{ n }}{% endwith %}") == []
    # …only inside their block
    assert content_errors("{% with n=contact.name %}{% endwith %}{{ n }}") != []
    assert content_errors("{% for ch in contact.name %}{% endfor %}{{ ch }}") != []
    assert content_errors("{% for ch in contact.nope %}{% endfor %}") != []


def test_render_for_a_contact(db, operator, tier, vip_field):
    contact = Contact.objects.create(
        name="王芳", owner=operator, city="杭州", tier=tier, birthday=date(1990, 5, 1),
        custom_fields={"vip_no": "A-88"},
    )  # fmt: skip
    context = contact_contexts([contact.pk], unsubscribe="回复 TD 退订")[contact.pk]
    text = render_content(
        "{{ contact.name }}您好，{{ contact.tier }}会员{{ custom.vip_no }}，{{ owner.name }}为您服务。{{ unsubscribe }}",
        context,
    )
    assert text == "王芳您好，金卡会员A-88，李运营为您服务。回复 TD 退订"
    assert render_content("{{ contact.city|default:'朋友' }}", context) == "杭州"
    # No autoescaping: the message is plain text
    contact.name = "<b>&"
    contact.save()
    context = contact_contexts([contact.pk], unsubscribe="")[contact.pk]
    assert render_content("{{ contact.name }}", context) == "<b>&"


def test_render_missing_values_are_empty(db):
    contact = Contact.objects.create(name="无主")
    context = contact_contexts([contact.pk], unsubscribe="")[contact.pk]
    assert render_content("[{{ owner.name }}][{{ contact.tier }}][{{ custom.x }}]", context) == "[][][]"


def test_variable_help_lists_custom_fields(db, vip_field):
    placeholders = [p for p, _label in variable_help()]
    assert "{{ contact.name }}" in placeholders
    assert "{{ unsubscribe }}" in placeholders
    assert "{{ custom.vip_no }}" in placeholders
    for placeholder in placeholders:
        assert content_errors(placeholder) == []
