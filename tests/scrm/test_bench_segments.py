"""`bench segments` at a tiny N: the compiled counts equal the hand-written SQL, the refreshes run."""

import json
from io import StringIO

from django.core.management import call_command

from contacts.models import Contact
from segments.models import Segment, SegmentMembership

NAMES = ["count_4cond", "count_event_window", "refresh_full", "refresh_first_fill", "refresh_incremental"]


def test_bench_segments_command_writes_json(db, tmp_path):
    path = tmp_path / "bench.json"
    out = StringIO()
    call_command("bench", "segments", "--contacts", "300", "--json", str(path), "--runs", "2", stdout=out)
    data = json.loads(path.read_text())
    assert [result["name"] for result in data["results"]] == NAMES
    counts = {result["name"]: result for result in data["results"]}
    assert counts["count_4cond"]["baseline_ms"] > 0 and counts["count_event_window"]["baseline_ms"] > 0
    assert all(result["median_ms"] > 0 for result in data["results"])
    everyone = Segment.objects.get(name="bench-everyone")
    reachable = Contact.objects.filter(opted_out=False).count()
    assert 250 < reachable < 300  # the data set opts a few out
    assert everyone.member_count == reachable == SegmentMembership.objects.filter(segment=everyone).count()
    assert Segment.objects.filter(name__startswith="bench-inc-", refreshed_at__isnull=False).count() == 50
    assert all(name in out.getvalue() for name in NAMES)
