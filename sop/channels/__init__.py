"""Delivery channels: a registry of small classes (sop.channels.base.Channel).

`task` (the default: a human sends it) delivers inside the dispatcher's transaction; `email` and `webhook`
talk to the outside world, so the dispatcher sends them after committing its claim and records each attempt.
WeCom registers its channel from its own app.
"""

from .base import Channel, SendResult, channel_choices, get_channel, register_channel
from .email import EmailChannel
from .task import TaskChannel
from .webhook import WebhookChannel

register_channel(TaskChannel())
register_channel(EmailChannel())
register_channel(WebhookChannel())

__all__ = ["Channel", "SendResult", "channel_choices", "get_channel", "register_channel"]
