from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from scrm.demo import seed_demo


class Command(BaseCommand):
    help = "Create the demo users, tags, tiers, contacts and six months of events (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--contacts", type=int, default=300, help="how many demo contacts (default 300)")

    def handle(self, *args, contacts: int, **options):
        report = seed_demo(contacts=contacts)
        counts = {
            "users": report.users_created,
            "contacts": report.contacts_created,
            "events": report.events_created,
            "notes": report.notes_created,
        }
        self.stdout.write(
            _("Created %(users)d users, %(contacts)d contacts, %(events)d events and %(notes)d notes.")
            % counts
        )
        self.stdout.write(_("Demo logins (username / password / role):"))
        for username, password, role in report.logins:
            self.stdout.write(f"  {username} / {password} / {role.label}")
