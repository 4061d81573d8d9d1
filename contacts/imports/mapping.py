"""Which column goes to which field: targets per import kind, and a guess from Chinese or English headers."""

import re
from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..models import CustomField, ImportJob

CUSTOM_PREFIX = "cf:"
KEY_FIELDS = ("external_userid", "phone", "email")


@dataclass(frozen=True)
class Target:
    name: str
    label: object
    aliases: tuple[str, ...]


_KEYS = (
    Target("external_userid", gettext_lazy("WeCom external user ID"),
           ("外部联系人id", "外部联系人", "externaluserid", "externalid", "wecomid", "企微id", "unionid")),
    Target("phone", gettext_lazy("Phone"), ("手机号", "手机号码", "手机", "电话", "电话号码", "联系电话", "phone", "mobile",
                                            "tel", "telephone", "phonenumber", "cellphone")),
    Target("email", gettext_lazy("Email"), ("邮箱", "电子邮箱", "电子邮件", "邮件", "email", "mail", "e-mail")),
)  # fmt: skip
CONTACT_TARGETS = (
    Target("name", gettext_lazy("Name"), ("姓名", "名字", "客户名称", "客户姓名", "昵称", "name", "fullname", "customer")),
    *_KEYS,
    Target("gender", gettext_lazy("Gender"), ("性别", "gender", "sex")),
    Target("birthday", gettext_lazy("Birthday"), ("生日", "出生日期", "birthday", "birthdate", "dateofbirth", "dob")),
    Target("city", gettext_lazy("City"), ("城市", "所在城市", "city")),
    Target("source", gettext_lazy("Source channel"), ("来源", "来源渠道", "渠道", "source", "channel")),
    Target("owner", gettext_lazy("Owner"), ("归属员工", "负责人", "跟进人", "所属员工", "员工", "owner", "staff",
                                            "assignedto")),
    Target("tier", gettext_lazy("Tier"), ("等级", "会员等级", "客户等级", "分层", "tier", "level")),
    Target("tags", gettext_lazy("Tags"), ("标签", "客户标签", "tags", "tag", "labels")),
)  # fmt: skip
EVENT_TARGETS = (
    *_KEYS,
    Target("kind", gettext_lazy("Event kind"), ("类型", "事件类型", "行为", "kind", "type", "event", "eventtype")),
    Target("occurred_at", gettext_lazy("Occurred at"), ("时间", "发生时间", "下单时间", "支付时间", "日期", "occurredat",
                                                        "time", "date", "datetime", "timestamp", "orderdate")),
    Target("amount", gettext_lazy("Amount"), ("金额", "实付金额", "订单金额", "支付金额", "amount", "total", "price")),
    Target("order_id", gettext_lazy("Order ID"), ("订单号", "订单编号", "订单id", "orderid", "order", "orderno",
                                                  "ordernumber")),
)  # fmt: skip


def _norm(text: str) -> str:
    return re.sub(r"[\s_\-*:：()（）]", "", str(text)).lower()


def targets_for(kind: str, custom_fields: list[CustomField]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(target name, label, normalised aliases) of every field a column can go to."""
    base = CONTACT_TARGETS if kind == ImportJob.Kind.CONTACTS else EVENT_TARGETS
    result = [(t.name, str(t.label), tuple(_norm(a) for a in (t.name, *t.aliases))) for t in base]
    if kind == ImportJob.Kind.CONTACTS:
        for field in custom_fields:
            aliases = tuple(_norm(a) for a in (field.key, field.label_zh, field.label_en))
            result.append((CUSTOM_PREFIX + field.key, f"{field.label_zh} / {field.label_en}", aliases))
    return result


def guess_mapping(headers: list[str], kind: str, custom_fields: list[CustomField]) -> dict[str, str]:
    """Header -> target ("" = ignore); each target taken by the first header that names it."""
    by_alias: dict[str, str] = {}
    for name, _label, aliases in targets_for(kind, custom_fields):
        for alias in aliases:
            by_alias.setdefault(alias, name)
    mapping, used = {}, set()
    for header in headers:
        target = by_alias.get(_norm(header), "")
        if target and target not in used:
            used.add(target)
            mapping[header] = target
        else:
            mapping[header] = ""
    return mapping


def mapping_errors(mapping: dict[str, str], kind: str, custom_fields: list[CustomField]) -> list[str]:
    """What is wrong with a mapping as a whole: unknown or repeated targets, missing required columns."""
    known = {name: label for name, label, _aliases in targets_for(kind, custom_fields)}
    errors = []
    chosen = [target for target in mapping.values() if target]
    for target in sorted(set(chosen)):
        if target not in known:
            errors.append(_("“%(target)s” is not a field you can import into.") % {"target": target})
        elif chosen.count(target) > 1:
            errors.append(_("Only one column can go to “%(field)s”.") % {"field": known[target]})
    if kind == ImportJob.Kind.CONTACTS and "name" not in chosen:
        errors.append(_("Choose the column with the contact's name."))
    if not set(KEY_FIELDS) & set(chosen):
        errors.append(_("Choose at least one column to match contacts by: external user ID, phone or email."))
    if kind == ImportJob.Kind.EVENTS:
        for required in ("kind", "occurred_at"):
            if required not in chosen:
                errors.append(_("Choose the column for “%(field)s”.") % {"field": known[required]})
    return errors


def column_targets(headers: list[str], mapping: dict[str, str]) -> dict[str, int]:
    """Target -> column index, for the row parsers."""
    return {mapping[h]: i for i, h in enumerate(headers) if mapping.get(h)}
