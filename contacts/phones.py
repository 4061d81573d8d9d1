"""Phone numbers are stored in E.164 ("+8613800138000"); mainland China is the default region."""

import re

import phonenumbers
from phonenumbers import PhoneMetadata

DEFAULT_REGION = "CN"
_SEPARATORS = re.compile(r"[\s\-().]")
# Fast path for the common case, a plain mainland mobile number (phonenumbers takes ~30 µs a call, imports
# call this a million times): a number that fully matches the CN mobile pattern of phonenumbers' own metadata
# is valid, and its E.164 form is +86 and the 11 digits. Anything else takes the full parse.
_CN_MOBILE = re.compile(
    r"(?:\+86|0086)?(" + PhoneMetadata.metadata_for_region("CN").mobile.national_number_pattern + r")"
)


class InvalidPhone(ValueError):
    pass


def normalise_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """Return the E.164 form of `raw`, "" for a blank value; raise InvalidPhone otherwise."""
    text = _SEPARATORS.sub("", (raw or "").strip())
    if not text:
        return ""
    if region == DEFAULT_REGION and (mobile := _CN_MOBILE.fullmatch(text)):
        return "+86" + mobile.group(1)
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(str(exc)) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(raw)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_search_digits(query: str) -> str:
    """The digits of a search box entry that looks like (part of) a phone number, else ""."""
    text = _SEPARATORS.sub("", query.strip())
    if text.startswith("+"):
        text = text[1:]
    return text if text.isdigit() and len(text) >= 3 else ""
