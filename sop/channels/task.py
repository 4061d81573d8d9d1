from django.utils.translation import gettext_lazy as _

from .base import Channel, Message, SendResult


class TaskChannel(Channel):
    """The default (seed 001: nobody likes chatting with a robot): the rendered message lands in the owner's
    inbox, and the operator sends it by hand and marks it sent or skipped with an outcome."""

    name = "task"
    label = _("Task for the owner (sent by hand)")
    inline = True
    needs_operator = True

    def send(self, message: Message) -> SendResult:
        return SendResult(ok=True)
