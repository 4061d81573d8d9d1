"""Reading uploaded files: format and encoding detection, then a stream of rows (never the whole file).

CSV: UTF-8 (with or without BOM) or GBK/GB18030, the encoding Excel on Chinese Windows writes. XLSX: openpyxl
in read-only mode, one row at a time. Row numbers are the spreadsheet's: the header is row 1.
"""

import codecs
import csv
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

BLOCK = 1 << 20
XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls
ENCODINGS = ("utf-8-sig", "gb18030")


class ImportFileError(Exception):
    """The file cannot be imported; the message says why, for the person who uploaded it."""


def check_size(size: int) -> None:
    if size == 0:
        raise ImportFileError(_("The file is empty."))
    limit = settings.IMPORT_MAX_UPLOAD_BYTES
    if size > limit:
        raise ImportFileError(
            _("The file is %(size)s; the largest file you can import is %(limit)s.")
            % {"size": filesizeformat(size), "limit": filesizeformat(limit)}
        )


def sniff_format(head: bytes, name: str) -> str:
    """ "csv" or "xlsx" from the content (not the name); ImportFileError for anything else."""
    if head.startswith(XLSX_MAGIC):
        return "xlsx"
    if head.startswith(OLE_MAGIC):
        raise ImportFileError(_("Old Excel files (.xls) cannot be read: save the sheet as .xlsx or CSV."))
    if b"\x00" in head[:8192] and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFileError(_("“%(name)s” is not a CSV or Excel (.xlsx) file.") % {"name": name})
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFileError(_("UTF-16 text cannot be read: save the file as CSV UTF-8."))
    return "csv"


def detect_encoding(path: Path) -> str:
    """The first of UTF-8 (a BOM is skipped) and GB18030 (a superset of GBK) that decodes the whole file."""
    for encoding in ENCODINGS:
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        try:
            with open(path, "rb") as fh:
                while block := fh.read(BLOCK):
                    decoder.decode(block)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise ImportFileError(_("The text encoding of the file is not UTF-8 or GBK: save it as CSV UTF-8."))


def count_lines(path: Path) -> int:
    """Lines in a CSV file, read in blocks: an estimate of the rows for the progress bar."""
    lines, last = 0, b""
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK):
            lines += block.count(b"\n")
            last = block
    return lines + (1 if last and not last.endswith(b"\n") else 0)


# The exporter puts "'" before a cell a spreadsheet would run as a formula (CSV injection, see
# contacts/exporting.py); reading such a cell back drops it, so an export re-imports unchanged.
FORMULA_STARTS = ("=", "@", "\t", "\r")


def unguard_formula(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text


def cell_text(value) -> str:
    """A cell as the text a person sees; Excel's numbers and dates come back as Python values."""
    if value is None:
        return ""
    if isinstance(value, str):
        return unguard_formula(value.strip())
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone number typed into a numeric cell
    if isinstance(value, datetime):
        return value.isoformat(sep=" ") if value.time() != time(0) else value.date().isoformat()
    if isinstance(value, date | Decimal | int | float):
        return str(value)
    return str(value).strip()


class RowSource:
    """Opens an uploaded file and yields (row number, cells as text); blank rows are skipped."""

    def __init__(self, path: Path, file_format: str, encoding: str = ""):
        self.path, self.file_format, self.encoding = Path(path), file_format, encoding

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        if self.file_format == "xlsx":
            yield from self._xlsx_rows()
        else:
            yield from self._csv_rows()

    def header_and_rows(self) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
        rows = self.rows()
        first = next(rows, None)
        if first is None:
            raise ImportFileError(_("The file has no header row."))
        return unique_headers(first[1]), rows

    def _csv_rows(self):
        with open(self.path, encoding=self.encoding or "utf-8-sig", newline="") as fh:
            dialect = _dialect(fh.read(64 * 1024))
            fh.seek(0)
            try:
                for number, row in enumerate(csv.reader(fh, dialect), start=1):
                    cells = [cell.strip() for cell in row]
                    if "'" in "".join(cells):  # rare: only such a row pays for a call per cell
                        cells = [unguard_formula(cell) for cell in cells]
                    if any(cells):
                        yield number, cells
            except csv.Error as exc:
                raise ImportFileError(
                    _("The file is not a valid CSV file (%(error)s).") % {"error": exc}
                ) from exc

    def _xlsx_rows(self):
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(self.path, read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 — zip or XML errors: the file is not a workbook
            raise ImportFileError(_("The file is not a valid Excel (.xlsx) workbook.")) from exc
        try:
            sheet = workbook.worksheets[0]
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                row = [cell_text(value) for value in values]
                if any(row):
                    yield number, row
        finally:
            workbook.close()

    def estimated_rows(self) -> int | None:
        if self.file_format == "csv":
            return max(count_lines(self.path) - 1, 0)
        from openpyxl import load_workbook

        workbook = load_workbook(self.path, read_only=True)
        try:
            return max((workbook.worksheets[0].max_row or 1) - 1, 0)
        finally:
            workbook.close()


def _dialect(sample: str):
    """Comma unless the sample is clearly tab- or semicolon-separated."""
    first_line = sample.split("\n", 1)[0]
    counts = {sep: first_line.count(sep) for sep in (",", "\t", ";")}
    delimiter = max(counts, key=counts.get) if any(counts.values()) else ","

    class Dialect(csv.excel):
        pass

    Dialect.delimiter = delimiter
    return Dialect


def unique_headers(cells: list[str]) -> list[str]:
    """Header texts made unique (a repeated header gets " (2)"), blanks named by their column."""
    seen: dict[str, int] = {}
    headers = []
    for index, cell in enumerate(cells, start=1):
        text = cell.strip() or _("Column %(n)d") % {"n": index}
        seen[text] = seen.get(text, 0) + 1
        headers.append(text if seen[text] == 1 else f"{text} ({seen[text]})")
    return headers


def inspect_file(path: Path, name: str) -> tuple[str, str]:
    """(file_format, encoding) of a stored upload, or ImportFileError before any work is done."""
    path = Path(path)
    check_size(path.stat().st_size)
    with open(path, "rb") as fh:
        head = fh.read(64 * 1024)
    file_format = sniff_format(head, name)
    encoding = detect_encoding(path) if file_format == "csv" else ""
    if file_format == "csv" and not head.decode(encoding, errors="ignore").strip():
        raise ImportFileError(_("The file is empty."))
    return file_format, encoding
