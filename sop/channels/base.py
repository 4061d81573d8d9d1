from dataclasses import dataclass

from django.utils.functional import Promise


@dataclass
class SendResult:
    ok: bool
    response_code: int | None = None
    error: str = ""
    # False: retrying cannot help (a 4xx, no address); the touchpoint fails at once.
    retryable: bool = True


@dataclass
class Message:
    """What a channel gets to send: plain values, never model instances."""

    touchpoint_id: int
    contact_id: int
    contact_name: str
    email: str
    external_userid: str
    template_name: str
    step_name: str
    text: str
    config: dict
    idempotency_key: str


class Channel:
    name: str = ""
    label: str | Promise = ""
    # Delivered inside the dispatcher's transaction (no outside I/O): exactly once by construction.
    inline: bool = False
    # The message is a task a person sends by hand (it opens in the owner's inbox) rather than delivered.
    needs_operator: bool = False
    # How many attempts before the touchpoint fails (outside channels); the n-th retry waits base × 2^(n-1).
    max_attempts: int = 5
    retry_base_seconds: int = 60

    def config_errors(self, config: dict) -> dict[str, str]:
        """field -> message for the step form; {} when the configuration is complete."""
        return {}

    def address_missing(self, message: Message) -> bool:
        """True when this customer cannot be reached on this channel (skipped, reason no_address)."""
        return False

    def send(self, message: Message) -> SendResult:  # pragma: no cover - every channel overrides it
        raise NotImplementedError


_channels: dict[str, Channel] = {}


def register_channel(channel: Channel) -> None:
    _channels[channel.name] = channel


def get_channel(name: str) -> Channel | None:
    return _channels.get(name)


def channel_choices() -> list[tuple[str, str]]:
    return [(c.name, str(c.label)) for c in _channels.values()]
