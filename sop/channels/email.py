from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .base import Channel, Message, SendResult


class EmailChannel(Channel):
    """Through Django's email backend (SMTP settings from the environment in production). The idempotency key
    goes out as the Message-ID, so a receiving system can drop a copy re-sent after a lost worker."""

    name = "email"
    label = gettext_lazy("Email")

    def config_errors(self, config: dict) -> dict[str, str]:
        subject = (config.get("subject") or "").strip()
        if not subject:
            return {"subject": _("An email needs a subject.")}
        if len(subject) > 200:
            return {"subject": _("Keep the subject under 200 characters.")}
        return {}

    def address_missing(self, message: Message) -> bool:
        return not message.email

    def send(self, message: Message) -> SendResult:
        domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(">") or "scrm.local"
        email = EmailMessage(
            subject=message.config.get("subject", ""),
            body=message.text,
            to=[message.email],
            headers={"Message-ID": f"<{message.idempotency_key}@{domain}>"},
        )
        try:
            email.send(fail_silently=False)
        except OSError as error:  # SMTPException is an OSError: refused, timed out, connection lost
            return SendResult(ok=False, error=f"{type(error).__name__}: {error}"[:500])
        return SendResult(ok=True)
