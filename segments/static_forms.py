"""The inputs of static segments (fixed lists): a pasted or uploaded list of phones and WeCom external ids,
a selection of contact ids, a snapshot's name; and how a list is matched to the contacts a user may see.

A list is read line by line (line numbers are the user's: the first line is 1). On a line, entries are
separated by , ， ; ； 、 tabs or spaces; but a phone may itself hold spaces ("138 0013 8000", "+86 138 0013
8000"), so a run of number-like words that together make one valid phone is one entry. Words without a Latin
letter or a digit (a name next to the phone, copied from a spreadsheet) are not entries.

Matching is set-based: the distinct phones (E.164, contacts.phones) and external ids are looked up in chunks
among contacts_visible_to(user) only, so another operator's customer is "no such customer", exactly like a
number nobody has: a list never tells whether a customer exists elsewhere.
"""

import csv
import io
import json
import re
import unicodedata
from dataclasses import dataclass, field

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import BooleanField, Func, QuerySet
from django.template.defaultfilters import filesizeformat
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from contacts.imports.reading import ENCODINGS, ImportFileError, cell_text, sniff_format
from contacts.models import Contact
from contacts.phones import InvalidPhone, normalise_phone
from contacts.selectors import contacts_visible_to

from .models import Segment, SegmentMembership

DEFAULT_MAX_UPLOAD_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_LINES = 100_000
UNMATCHED_SHOWN = 50
LOOKUP_CHUNK = 1000  # phones or ids per lookup query
MAX_SELECTED = 10_000  # contact ids in one selection (the list page shows 50 at a time)
MAX_JOINED_WORDS = 5  # "+86 138 0013 8000" is four words
MAX_PHONE_DIGITS = 17  # 0086 and a 13-digit number; longer runs are never one phone
HEADER_NAMES = {"phone", "phones", "mobile", "tel", "telephone", "external_userid", "external id", "userid"}

PHONE, EXTERNAL, INVALID = "phone", "external", "invalid"
REASON_INVALID = gettext_lazy("not a phone or external id")
REASON_UNKNOWN = gettext_lazy("no such customer")

_SEPARATORS = re.compile(r"[,;、]")  # after NFKC, which turns ， ； and the ideographic space into ASCII
_NUMBER_WORD = re.compile(r"[+\d\-().]+")
_EXTERNAL_ID = re.compile(r"[A-Za-z0-9_\-.@=+/:]{1,64}")
_LATIN_LETTER = re.compile(r"[A-Za-z]")
_LATIN_OR_DIGIT = re.compile(r"[A-Za-z0-9]")
_DIGITS = re.compile(r"\d")


def max_upload_bytes() -> int:
    limit = getattr(settings, "STATIC_SEGMENT_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES)
    return min(limit, settings.IMPORT_MAX_UPLOAD_BYTES)


def max_lines() -> int:
    return getattr(settings, "STATIC_SEGMENT_MAX_LINES", DEFAULT_MAX_LINES)


def max_paste_bytes() -> int:
    """What fits in the box: Django refuses a request body over DATA_UPLOAD_MAX_MEMORY_SIZE before any view
    runs (a bare 400 page), so the page stops a longer paste in the browser and asks for a file. 0: no limit."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return max(limit - 64 * 1024, 1024) if limit else 0


# --- reading a list --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    line: int
    text: str  # as written (shortened), for the report
    kind: str  # PHONE, EXTERNAL or INVALID
    key: str = ""  # the E.164 phone or the external id


def _too_many_lines() -> str:
    return _("The list has more than %(n)s lines; split it into smaller lists.") % {
        "n": number_format(max_lines(), force_grouping=True)
    }


def parse_lines(lines: list[tuple[int, str]]) -> list[Entry]:
    entries: list[Entry] = []
    limit = max_lines()
    for number, text in lines:
        entries.extend(_line_entries(number, text))
        if len(entries) > limit:
            raise ValidationError(
                _("The list has more than %(n)s entries; split it into smaller lists.")
                % {"n": number_format(limit, force_grouping=True)}
            )
    return entries


def _line_entries(number: int, text: str) -> list[Entry]:
    entries = []
    for piece in _SEPARATORS.split(unicodedata.normalize("NFKC", text)):
        entries.extend(_piece_entries(number, piece.split()))
    if not entries and text.strip():
        entries.append(Entry(number, text.strip()[:100], INVALID))
    return entries


def _piece_entries(number: int, words: list[str]) -> list[Entry]:
    entries, at = [], 0
    while at < len(words):
        phone, used = _phone_at(words, at)
        if phone:
            entries.append(Entry(number, " ".join(words[at : at + used]), PHONE, phone))
            at += used
            continue
        word = words[at]
        at += 1
        if _EXTERNAL_ID.fullmatch(word) and _LATIN_LETTER.search(word):
            entries.append(Entry(number, word, EXTERNAL, word))
        elif _LATIN_OR_DIGIT.search(word):
            entries.append(Entry(number, word[:100], INVALID))
    return entries


def _phone_at(words: list[str], at: int) -> tuple[str, int]:
    """The longest run of number-like words from `at` that is one valid phone: (E.164, words used)."""
    run = 0
    while run < MAX_JOINED_WORDS and at + run < len(words) and _NUMBER_WORD.fullmatch(words[at + run]):
        run += 1
    for size in range(run, 0, -1):
        candidate = "".join(words[at : at + size])
        if size > 1 and len(_DIGITS.findall(candidate)) > MAX_PHONE_DIGITS:
            continue
        try:
            phone = normalise_phone(candidate)
        except InvalidPhone:
            continue
        if phone:
            return phone, size
    return "", 0


def read_pasted(text: str) -> list[tuple[int, str]]:
    lines = text.splitlines()
    if len(lines) > max_lines():
        raise ValidationError(_too_many_lines())
    return list(enumerate(lines, start=1))


def read_upload(upload) -> tuple[list[tuple[int, str]], str]:
    """(numbered lines, the header row skipped or ""): a .txt file line by line like the box, a .csv or .xlsx
    file by its first column. ImportFileError (the import's messages) or ValidationError, before any work."""
    limit = max_upload_bytes()
    if upload.size == 0:
        raise ImportFileError(_("The file is empty."))
    if upload.size > limit:
        raise ImportFileError(
            _("The file is %(size)s; a list can be at most %(limit)s.")
            % {"size": filesizeformat(upload.size), "limit": filesizeformat(limit)}
        )
    data = upload.read()
    name = upload.name or ""
    if sniff_format(data[: 64 * 1024], name) == "xlsx":
        rows = _xlsx_first_column(data)
    else:
        if data.rstrip(b"\r\n").count(b"\n") + 1 > max_lines():  # counted in bytes, before decoding
            raise ValidationError(_too_many_lines())
        text = _decode(data)
        rows = _csv_first_column(text) if name.lower().endswith(".csv") else read_pasted(text)
    return _without_header(rows)


def _decode(data: bytes) -> str:
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFileError(_("The text encoding of the file is not UTF-8 or GBK: save it as CSV UTF-8."))


def _csv_first_column(text: str) -> list[tuple[int, str]]:
    first_line = text.split("\n", 1)[0]
    counts = {sep: first_line.count(sep) for sep in (",", "\t", ";")}
    delimiter = max(counts, key=counts.get) if any(counts.values()) else ","
    rows = []
    try:
        for number, row in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), start=1):
            rows.append((number, row[0].strip() if row else ""))
    except csv.Error as exc:
        raise ImportFileError(_("The file is not a valid CSV file (%(error)s).") % {"error": exc}) from exc
    if len(rows) > max_lines():
        raise ValidationError(_too_many_lines())
    return rows


def _xlsx_first_column(data: bytes) -> list[tuple[int, str]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 — zip or XML errors: the file is not a workbook
        raise ImportFileError(_("The file is not a valid Excel (.xlsx) workbook.")) from exc
    rows = []
    try:
        for number, values in enumerate(workbook.worksheets[0].iter_rows(values_only=True), start=1):
            rows.append((number, cell_text(values[0]) if values else ""))
            if len(rows) > max_lines():
                raise ValidationError(_too_many_lines())
    finally:
        workbook.close()
    return rows


def _without_header(rows: list[tuple[int, str]]) -> tuple[list[tuple[int, str]], str]:
    """A first row like "手机号" or "phone" (no digit; not ASCII, or a usual column name) is a header."""
    first = next((i for i, (_n, text) in enumerate(rows) if text.strip()), None)
    if first is None:
        return rows, ""
    text = rows[first][1].strip()
    looks_like_header = not _DIGITS.search(text) and (not text.isascii() or text.lower() in HEADER_NAMES)
    if not looks_like_header:
        return rows, ""
    return rows[:first] + rows[first + 1 :], text[:100]


# --- matching ----------------------------------------------------------------------------------------


@dataclass
class Unmatched:
    line: int
    text: str
    reason: str


@dataclass
class ListMatch:
    contact_ids: list[int] = field(default_factory=list)
    entries: int = 0
    duplicates: int = 0
    unmatched: list[Unmatched] = field(default_factory=list)
    header: str = ""
    already: int | None = None  # adding to a list: found contacts that are members already

    @property
    def found(self) -> int:
        return len(self.contact_ids)

    @property
    def not_found(self) -> int:
        return len(self.unmatched)

    @property
    def shown(self) -> list[Unmatched]:
        return self.unmatched[:UNMATCHED_SHOWN]

    @property
    def not_shown(self) -> int:
        return max(0, len(self.unmatched) - UNMATCHED_SHOWN)

    @property
    def new(self) -> int:
        return self.found - (self.already or 0)


class IdIn(Func):
    """`column IN (ids)` with one bound parameter however many ids (100,000 ids as an IN list would pass the
    databases' limits on parameters): an array on PostgreSQL, a JSON array on SQLite."""

    output_field = BooleanField()

    def __init__(self, expression, ids):
        super().__init__(expression)
        self.ids = [int(i) for i in ids]

    def as_sql(self, compiler, connection, **extra_context):
        column, params = compiler.compile(self.source_expressions[0])
        return f"{column} IN (SELECT value FROM json_each(%s))", [*params, json.dumps(self.ids)]

    def as_postgresql(self, compiler, connection, **extra_context):
        column, params = compiler.compile(self.source_expressions[0])
        return f"{column} = ANY(%s)", [*params, self.ids]


def contacts_by_ids(user, ids: list[int]) -> QuerySet[Contact]:
    """These contacts among those `user` may see."""
    return contacts_visible_to(user).filter(IdIn("pk", ids))


def _lookup(contacts: QuerySet[Contact], column: str, keys: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), LOOKUP_CHUNK):
        chunk = ordered[start : start + LOOKUP_CHUNK]
        found.update(contacts.filter(**{f"{column}__in": chunk}).values_list(column, "pk"))
    return found


def match_entries(
    user, entries: list[Entry], *, header: str = "", segment: Segment | None = None
) -> ListMatch:
    """Each entry to a contact `user` may see, in the list's order; repeats (the same phone twice, or a phone
    and the external id of one customer) are counted once. With `segment`, also how many are members."""
    visible = contacts_visible_to(user)
    by_key = {
        PHONE: _lookup(visible, "phone", {e.key for e in entries if e.kind == PHONE}),
        EXTERNAL: _lookup(visible, "external_userid", {e.key for e in entries if e.kind == EXTERNAL}),
    }
    result, seen_keys, seen_ids = ListMatch(entries=len(entries), header=header), set(), set()
    for entry in entries:
        if entry.kind == INVALID:
            result.unmatched.append(Unmatched(entry.line, entry.text, str(REASON_INVALID)))
        elif (entry.kind, entry.key) in seen_keys:
            result.duplicates += 1
        elif (pk := by_key[entry.kind].get(entry.key)) is None:
            seen_keys.add((entry.kind, entry.key))
            result.unmatched.append(Unmatched(entry.line, entry.text, str(REASON_UNKNOWN)))
        else:
            seen_keys.add((entry.kind, entry.key))
            if pk in seen_ids:
                result.duplicates += 1
            else:
                seen_ids.add(pk)
                result.contact_ids.append(pk)
    if segment is not None and result.contact_ids:
        members = SegmentMembership.objects.filter(segment=segment)
        result.already = members.filter(IdIn("contact_id", result.contact_ids)).count()
    return result


# --- forms -------------------------------------------------------------------------------------------


class ListInputForm(forms.Form):
    """A pasted list or an uploaded file (not both); cleaned_data["entries_read"] holds the parsed entries."""

    entries = forms.CharField(
        label=gettext_lazy("Phones or external ids"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}),
    )
    file = forms.FileField(label=gettext_lazy("Or upload a file"), required=False)

    def __init__(self, *args, too_big: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.too_big = too_big

    def clean(self):
        data = super().clean()
        if self.too_big:
            raise ValidationError(
                _("The list is too long to paste: save it as a .txt or .csv file and upload it instead.")
            )
        if self.errors:  # the file field's own checks (an empty file, a missing one)
            return data
        text, upload = data.get("entries") or "", data.get("file")
        if upload and text.strip():
            raise ValidationError(_("Paste a list or upload a file, not both."))
        if not upload and not text.strip():
            raise ValidationError(_("Paste phones or external ids, one per line, or upload a file."))
        try:
            lines, data["header"] = read_upload(upload) if upload else (read_pasted(text), "")
            data["entries_read"] = parse_lines(lines)
            if not data["entries_read"]:
                raise ValidationError(_("The file holds no phones or external ids."))
        except ImportFileError as exc:
            self.add_error("file" if upload else "entries", str(exc))
        except ValidationError as exc:
            self.add_error("file" if upload else "entries", exc)
        return data


class NewStaticListForm(ListInputForm):
    # The name is checked when the list is created (segments.services), not when it is only checked.
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100, required=False)
    description = forms.CharField(
        label=gettext_lazy("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    field_order = ["name", "description", "entries", "file"]


_ID = re.compile(r"[0-9]{1,18}")  # a bigint; a longer number would overflow the database's integer


class ContactIdsForm(forms.Form):
    ids = forms.TypedMultipleChoiceField(
        coerce=int,
        error_messages={
            "required": gettext_lazy("Select at least one contact."),
            "invalid_choice": gettext_lazy("The selection was not understood; select the contacts again."),
        },
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any id is accepted here; the view then rejects ids the user may not see, as a whole.
        self.fields["ids"].valid_value = lambda value: bool(_ID.fullmatch(str(value)))

    def clean_ids(self):
        ids = sorted(set(self.cleaned_data["ids"]))
        if len(ids) > MAX_SELECTED:
            raise ValidationError(
                _("Select at most %(n)s contacts.") % {"n": number_format(MAX_SELECTED, force_grouping=True)}
            )
        return ids


class SelectionForm(ContactIdsForm):
    name = forms.CharField(
        label=gettext_lazy("Name"), max_length=100, error_messages={"required": gettext_lazy("Enter a name.")}
    )


class SnapshotForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100, required=False)
