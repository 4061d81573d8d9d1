import pytest

from contacts.phones import InvalidPhone, normalise_phone, phone_search_digits


@pytest.mark.parametrize(
    "raw",
    ["13800138000", "+8613800138000", "+86 138 0013 8000", "138-0013-8000", " 138 0013 8000 ", "008613800138000",
     "(138) 0013-8000", "86-13800138000"],
)  # fmt: skip
def test_mainland_mobile_forms_normalise_to_e164(raw):
    assert normalise_phone(raw) == "+8613800138000"


def test_foreign_number_keeps_its_country():
    assert normalise_phone("+1 650 253 0000") == "+16502530000"


def test_blank_is_empty_string():
    assert normalise_phone("") == ""
    assert normalise_phone("   ") == ""


@pytest.mark.parametrize(
    "raw", ["12345", "1380013800", "abc", "138001380001234", "+86 000 0000 0000", "0000000000"]
)
def test_invalid_numbers_raise(raw):
    with pytest.raises(InvalidPhone):
        normalise_phone(raw)


def test_search_digits_only_for_number_like_queries():
    assert phone_search_digits("138 0013") == "1380013"
    assert phone_search_digits("+86138") == "86138"
    assert phone_search_digits("12") == ""
    assert phone_search_digits("张三") == ""
