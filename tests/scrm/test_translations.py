"""zh_Hans is complete: every message in the catalogue has a translation, and the catalogue is current."""

import re
import shutil
from pathlib import Path

import pytest
from django.utils import translation

PO = Path(__file__).resolve().parents[2] / "locale/zh_Hans/LC_MESSAGES/django.po"


def po_entries(text: str):
    """(msgid, msgstr-joined, fuzzy) for each non-header, non-obsolete entry."""
    for block in text.split("\n\n"):
        lines = [line for line in block.strip().splitlines() if not line.startswith("#~")]
        if not any(line.startswith("msgid") for line in lines):
            continue
        fuzzy = any(line.startswith("#,") and "fuzzy" in line for line in lines)
        joined = "\n".join(line for line in lines if not line.startswith("#"))
        msgid = "".join(re.findall(r'"(.*)"', joined.split("msgstr")[0].split("msgid_plural")[0]))
        msgstr = "".join(re.findall(r'"(.*)"', "msgstr".join(joined.split("msgstr")[1:])))
        if msgid:
            yield msgid, msgstr, fuzzy


def test_every_message_is_translated():
    missing = [
        msgid for msgid, msgstr, fuzzy in po_entries(PO.read_text(encoding="utf-8")) if not msgstr or fuzzy
    ]
    assert missing == [], f"{len(missing)} untranslated or fuzzy: {missing[:10]}"


def test_translations_are_used():
    with translation.override("zh-hans"):
        assert translation.gettext("Contacts") == "客户"
    with translation.override("en"):
        assert translation.gettext("Contacts") == "Contacts"


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="gettext tools are not installed")
def test_catalogue_covers_every_marked_string(tmp_path):
    """makemessages finds no marked string that the committed catalogue lacks (it runs in place; restored after)."""
    from django.core.management import call_command

    committed_copy = tmp_path / "django.po"
    shutil.copy(PO, committed_copy)
    try:
        call_command("makemessages", locale=["zh_Hans"], verbosity=0, no_obsolete=True,
                     ignore_patterns=[".venv", "node_modules", "staticfiles", "tests"])  # fmt: skip
        fresh = {msgid for msgid, _s, _f in po_entries(PO.read_text(encoding="utf-8"))}
    finally:
        shutil.copy(committed_copy, PO)
    committed = {msgid for msgid, _s, _f in po_entries(committed_copy.read_text(encoding="utf-8"))}
    assert fresh - committed == set(), f"strings not in the catalogue: {sorted(fresh - committed)[:10]}"
