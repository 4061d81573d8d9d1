from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ScrmConfig(AppConfig):
    name = "scrm"
    verbose_name = _("System")

    def ready(self):
        # Records when beat last published the heartbeat (see scrm/signals.py for why a signal).
        # Register the tasks other apps hand work to by name (contacts.events -> the pipeline),
        # so eager mode (tests) runs them rather than sending them to a broker.
        from . import (
            signals,  # noqa: F401
            tasks,  # noqa: F401
        )
