"""`bench sop` at a tiny N: the three measurements run, their checks pass, and it leaves nothing behind."""

import json
from io import StringIO

from django.core.management import call_command

from contacts.models import Contact
from segments.models import Segment
from sop.models import Enrollment, SopTemplate, Touchpoint

NAMES = ["enroll_segment", "dispatch", "trigger_latency"]


def test_bench_sop_command_writes_json_and_cleans_up(db, tmp_path):
    path = tmp_path / "bench.json"
    out = StringIO()
    call_command("bench", "sop", "--contacts", "300", "--json", str(path), "--runs", "2", stdout=out)
    data = json.loads(path.read_text())
    assert data["scenario"] == "sop" and data["contacts"] == 300
    assert [result["name"] for result in data["results"]] == NAMES
    results = {result["name"]: result for result in data["results"]}
    assert all(result["median_ms"] > 0 for result in data["results"])
    dispatch = results["dispatch"]
    assert dispatch["baseline_ms"] > 0
    assert abs(dispatch["per_s"] - 30 / (dispatch["median_ms"] / 1000)) < 0.01 * dispatch["per_s"]
    assert results["enroll_segment"]["per_s"] is None and results["trigger_latency"]["baseline_ms"] is None
    assert all(name in out.getvalue() for name in NAMES)
    # Run again from a clean slate: nothing of it is left, and the data set is as it was.
    assert not SopTemplate.objects.exists() and not Enrollment.objects.exists()
    assert not Touchpoint.objects.exists()
    assert not Segment.objects.filter(name__startswith="bench-sop-").exists()
    assert Contact.objects.count() == 300
