"""`manage.py bench import` at a tiny N: it runs, reports the issue's rows, and never touches other contacts."""

import csv
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from contacts.models import Contact
from scrm.bench.scenarios import SCENARIOS
from scrm.bench.scenarios.imports import PHONE_PREFIX, write_csv


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_generated_file_is_realistic_and_valid(tmp_path):
    path = tmp_path / "c.csv"
    write_csv(path, 50)
    rows = list(csv.reader(path.open(encoding="utf-8")))
    assert rows[0] == ["姓名", "手机号", "邮箱", "城市", "标签", "来源"]
    assert len(rows) == 51
    assert all(row[1].startswith("137") and len(row[1]) == 11 for row in rows[1:])
    assert 5 <= sum(1 for row in rows[1:] if row[2]) <= 30  # ~30% have an email


def test_bench_import_reports_the_three_rows(db, tmp_path):
    assert SCENARIOS["import"].own_data
    path = tmp_path / "bench.json"
    out = StringIO()
    call_command("bench", "import", "--contacts", "40", "--runs", "1", "--json", str(path), stdout=out)
    data = json.loads(path.read_text())
    assert data["scenario"] == "import" and data["contacts"] == 40
    results = {row["name"]: row for row in data["results"]}
    assert list(results) == ["import_empty", "import_again", "copy_baseline"]
    for name in ("import_empty", "import_again"):
        assert results[name]["per_s"] > 0 and results[name]["median_ms"] > 0
        assert results[name]["peak_rss_mb"] > 10
    assert results["copy_baseline"]["median_ms"] > 0
    assert "import_again" in out.getvalue() and "peak MB" in out.getvalue()
    assert Contact.objects.filter(phone__startswith=PHONE_PREFIX).count() == 40


def test_bench_import_refuses_a_database_with_other_contacts(db, contact):
    with pytest.raises(CommandError, match="needs a database without other contacts"):
        call_command("bench", "import", "--contacts", "5", "--runs", "1", stdout=StringIO())
    assert Contact.objects.count() == 1
