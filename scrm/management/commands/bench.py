import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test.utils import override_settings

from scrm.bench.data import Dataset, build_dataset
from scrm.bench.runner import BenchFailure, Result, format_table, write_json
from scrm.bench.scenarios import SCENARIOS, run_scenario

# Beyond this the bulk_create fallback is slow and the numbers mean nothing: benchmarks run on PostgreSQL.
SQLITE_SENSIBLE_CONTACTS = 20_000


class Command(BaseCommand):
    help = (
        "Build (or reuse) a synthetic data set of N contacts (~10 events each) on the configured "
        "database and time a scenario (DESIGN.md, Benchmarks)."
    )

    def add_arguments(self, parser):
        parser.add_argument("scenario", choices=sorted(SCENARIOS))
        parser.add_argument(
            "--contacts", type=int, default=10_000, help="size of the data set (default 10000)"
        )
        parser.add_argument("--json", dest="json_path", metavar="FILE", help="also write the results as JSON")
        parser.add_argument(
            "--runs", type=int, default=7, help="timed runs per measurement, after one warm-up"
        )

    def handle(self, *args, scenario: str, contacts: int, json_path: str | None, runs: int, **options):
        if contacts < 0 or runs < 1:
            raise CommandError("--contacts must be >= 0 and --runs >= 1")
        self.warn_without_autovacuum()
        if getattr(SCENARIOS[scenario], "own_data", False):
            # The scenario makes (and clears) its own data; the shared data set is not touched.
            dataset = contacts
            self.stdout.write(f"scenario {scenario} on {connection.vendor}, {runs} run(s), own data set")
        else:
            dataset = self.build(contacts)
            self.stdout.write(f"scenario {scenario}, median of {runs} runs after one warm-up")
        results = self.measure(scenario, dataset, runs)
        self.stdout.write(format_table(results))
        # Wall times stretch on a busy machine; the load says how far to trust them.
        self.stdout.write(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        if json_path:
            write_json(json_path, scenario, contacts, results)
            self.stdout.write(f"wrote {json_path}")

    def warn_without_autovacuum(self) -> None:
        """Production runs PostgreSQL with autovacuum on; without it dead rows pile up run after run (the
        pipeline's inbox, updated contacts) and index-only scans fall back to the heap, so later figures drift."""
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            cursor.execute("SHOW autovacuum")
            if cursor.fetchone()[0] != "on":
                self.stderr.write(
                    "warning: autovacuum is off on this server (production runs with it on): "
                    "ALTER SYSTEM SET autovacuum = on; SELECT pg_reload_conf();"
                )

    def build(self, contacts: int) -> Dataset:
        vendor = connection.vendor
        if vendor != "postgresql" and contacts > SQLITE_SENSIBLE_CONTACTS:
            self.stderr.write(f"warning: {contacts} contacts on {vendor}; benchmarks are for PostgreSQL")
        dataset = build_dataset(contacts, log=lambda message: self.stdout.write(f"  {message}"))
        how = "reused"
        if dataset.created or dataset.removed:
            how = f"added {dataset.created}, removed {dataset.removed}"
        self.stdout.write(f"data set: {contacts} contacts on {vendor}, {how} ({dataset.seconds:.1f}s)")
        return dataset

    def measure(self, scenario: str, dataset: Dataset | int, runs: int) -> list[Result]:
        # Production runs with DEBUG off: no query log, no template debug info in the timed path.
        # The test client calls itself "testserver", which a production ALLOWED_HOSTS would refuse.
        with override_settings(DEBUG=False, ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"]):
            try:
                return run_scenario(scenario, dataset, runs=runs)
            except BenchFailure as exc:
                raise CommandError(str(exc)) from exc
