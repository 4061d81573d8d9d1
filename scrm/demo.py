"""Demo data for `make run`, screenshots and trying the app (`python manage.py seed_demo`).

Idempotent by stable keys: users by username, tag groups / tags / tiers by name, contacts by a
phone number derived from their index, events by the idempotency key `demo:<phone>:<n>`. A second
run creates nothing; a larger --contacts only adds the missing contacts. Randomness is seeded per
contact, so contact i is the same whatever N is, and an existing contact is never touched again
(an operator's edits to demo data survive a re-run).
"""

import random
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.roles import Role
from contacts.events import events_owed_to_pipeline
from contacts.models import (
    Contact,
    ContactTag,
    CustomField,
    CustomFieldKind,
    Event,
    EventKind,
    EventSource,
    Gender,
    Note,
    Source,
    Tag,
    TagGroup,
    Tier,
)
from scrm import pipeline
from segments.models import Segment, SegmentMembership
from segments.services import segment_refresh
from sop.dispatch import dispatch_due
from sop.enrollment import enrollments_start, pairs_source
from sop.models import SopStep, SopTemplate, Trigger

DEMO_PASSWORD = "demo12345"
DEMO_SEED = 20240601
# Six months of history: contacts joined within it and their events fall inside it.
HISTORY_DAYS = 182
BATCH_SIZE = 500


@dataclass(frozen=True)
class DemoUser:
    username: str
    display_name: str
    role: Role
    manager: str | None = None


DEMO_USERS = (
    DemoUser("admin", "陈管理员", Role.ADMIN),
    DemoUser("manager", "王经理", Role.MANAGER),
    DemoUser("operator1", "李娜", Role.OPERATOR, manager="manager"),
    DemoUser("operator2", "张伟", Role.OPERATOR, manager="manager"),
    DemoUser("operator3", "刘洋", Role.OPERATOR, manager="manager"),
)

# Shared with the benchmark data set (scrm.bench.data), so both can live in one database.
TAG_GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "口味偏好": (("甜", "#e83e8c"), ("辣", "#dc3545"), ("咸", "#6f42c1")),
    "价格敏感度": (("高", "#fd7e14"), ("中", "#ffc107"), ("低", "#20c997")),
    "兴趣": (
        ("护肤", "#d63384"),
        ("母婴", "#f4a261"),
        ("健身", "#198754"),
        ("美食", "#e76f51"),
        ("旅行", "#0dcaf0"),
    ),
}
TIERS = (("普通会员", 1, "#6c757d"), ("银卡", 2, "#8d99ae"), ("金卡", 3, "#c9a227"), ("钻石", 4, "#6f42c1"))

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN_NAMES = (
    "伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀兰", "霞", "平", "刚", "桂英", "婷", "玉兰", "文", "浩", "宇", "欣怡", "子涵", "梓萱", "一诺",
    "思远", "佳琪", "雨桐", "晨", "晓燕", "建华", "志强", "海燕", "丹", "俊杰", "嘉怡", "诗涵", "博文", "雪",
    "慧", "琳", "欣", "佳怡", "子轩", "浩然", "梦瑶", "晓东", "春梅", "文静", "家豪", "美玲", "雅琴", "立新",
)  # fmt: skip
CITIES = (
    "上海", "北京", "广州", "深圳", "杭州", "成都", "重庆", "武汉", "南京", "苏州", "西安", "长沙",
    "天津", "郑州", "东莞", "青岛", "宁波", "厦门", "合肥", "昆明", "福州", "济南",
)  # fmt: skip
# Mainland mobile prefixes that phonenumbers accepts for any 8 following digits. 130 is left to the
# benchmark data set, so demo and bench contacts never share a phone.
MOBILE_PREFIXES = (
    "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155", "156", "157",
    "158", "159", "166", "176", "177", "178", "180", "181", "182", "183", "185", "186", "187", "188", "189",
    "198", "199",
)  # fmt: skip
EMAIL_DOMAINS = ("qq.com", "163.com", "126.com", "foxmail.com", "gmail.com")
EMAIL_NAMES = (
    "lily", "xiaoming", "tina", "kevin", "amy", "jack", "coco", "leo", "mia", "sunny", "echo", "max",
)  # fmt: skip
PRODUCTS = (
    "玫瑰精华面霜", "有机米粉", "瑜伽垫", "麻辣牛肉干", "旅行收纳袋", "芒果干", "海盐苏打饼干", "蜂蜜柚子茶",
)  # fmt: skip
MESSAGES_IN = ("请问这款还有货吗？", "什么时候发货？", "有优惠券吗？", "收到了，很好用", "能开发票吗？")
MESSAGES_OUT = ("您好，新品已上架，欢迎了解～", "本周会员日全场9折", "您的订单已发货", "天气转凉，注意保暖哦")
CONTENT = ("夏季护肤指南", "宝宝辅食怎么做", "10分钟居家健身", "川菜新品试吃报告", "周末短途旅行攻略")
STORES = ("静安店", "天河店", "南山店", "西湖店", "春熙路店")
NOTES = (
    "客户偏好晚上8点后联系",
    "上次反馈物流慢，已补偿一张优惠券",
    "对母婴类新品感兴趣，上新时优先通知",
    "生日快到了，可以安排一份小惊喜",
    "价格敏感，适合推送满减活动",
)
OPT_OUT_REASONS = ("客户要求不再接收营销消息", "反馈推送过于频繁", "已转为线下门店服务")

# Weighted choices: value -> relative weight.
ACTIVITY_KINDS = {
    EventKind.MESSAGE_IN: 20,
    EventKind.MESSAGE_OUT: 22,
    EventKind.CONTENT_VIEW: 18,
    EventKind.MOMENTS_LIKE: 14,
    EventKind.CHECK_IN: 10,
    EventKind.PURCHASE: 16,
}
SOURCES = {Source.FRIEND: 40, Source.GROUP: 20, Source.OFFICIAL_ACCOUNT: 12, Source.MINI_PROGRAM: 12,
           Source.STORE: 10, Source.IMPORT: 4, Source.API: 2}  # fmt: skip
# Customers who arrived as a friend or through a group have that as their first event.
ARRIVAL_KINDS = {Source.FRIEND: EventKind.FRIEND_ADDED, Source.GROUP: EventKind.GROUP_JOINED}
GENDERS = {Gender.FEMALE: 55, Gender.MALE: 35, Gender.UNKNOWN: 10}
TIER_SHARE = {None: 20, "普通会员": 45, "银卡": 20, "金卡": 11, "钻石": 4}
TAG_COUNT_SHARE = {0: 15, 1: 30, 2: 30, 3: 17, 4: 8}


def weighted(rng: random.Random, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


@dataclass
class Taxonomy:
    tags: dict[tuple[str, str], Tag]  # (group name, tag name) -> tag
    tiers: dict[str, Tier]  # name -> tier


def ensure_taxonomy() -> Taxonomy:
    """The demo tag groups, tags and tiers, created when missing (shared with the benchmark)."""
    tags = {}
    for position, (group_name, tag_specs) in enumerate(TAG_GROUPS.items()):
        group, _ = TagGroup.objects.get_or_create(name=group_name, defaults={"position": position})
        for tag_name, colour in tag_specs:
            tag, _ = Tag.objects.get_or_create(group=group, name=tag_name, defaults={"colour": colour})
            tags[(group_name, tag_name)] = tag
    tiers = {}
    for name, rank, colour in TIERS:
        # Name and rank are both unique: a tier an admin renamed keeps its rank and is reused.
        existing = Tier.objects.filter(Q(name=name) | Q(rank=rank)).order_by("-rank").first()
        tiers[name] = existing or Tier.objects.create(name=name, rank=rank, colour=colour)
    return Taxonomy(tags=tags, tiers=tiers)


def ensure_user(*, username: str, display_name: str, role: Role, manager=None, password: str | None = None):
    """A user with `role`, created when missing; returns (user, created). No password: unusable."""
    user, created = get_user_model().objects.get_or_create(
        username=username,
        defaults={"display_name": display_name, "manager": manager, "is_staff": role == Role.ADMIN},
    )
    if created:
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(update_fields=["password"])
    user.groups.add(Group.objects.get(name=role.value))
    return user, created


def ensure_demo_users() -> tuple[dict, int]:
    users, created_count = {}, 0
    for spec in DEMO_USERS:  # managers come before their team in DEMO_USERS
        users[spec.username], created = ensure_user(
            username=spec.username, display_name=spec.display_name, role=spec.role,
            manager=users.get(spec.manager), password=DEMO_PASSWORD,
        )  # fmt: skip
        created_count += created
    return users, created_count


def demo_phone(index: int, rng: random.Random) -> str:
    # Multiplying by a number coprime to 10^8 permutes the 8-digit suffixes, so phones are unique
    # for every index below 10^8 whatever prefix the generator picks.
    suffix = (index * 7_919_113 + 20_240_601) % 100_000_000
    return f"+86{rng.choice(MOBILE_PREFIXES)}{suffix:08d}"


def random_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN_NAMES)


def random_email(rng: random.Random) -> str:
    return f"{rng.choice(EMAIL_NAMES)}{rng.randint(10, 9999)}@{rng.choice(EMAIL_DOMAINS)}"


@dataclass
class ContactPlan:
    """One demo contact and what hangs off it, unsaved."""

    contact: Contact
    tags: list[Tag] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)


@dataclass
class DemoContext:
    now: object
    owners: list  # operators; None entries leave a contact unassigned (公海)
    taxonomy: Taxonomy
    manager: object


# Admin-defined fields the demo fills in: (key, zh, en, kind, options).
CUSTOM_FIELDS = [
    ("skin_type", "肤质", "Skin type", CustomFieldKind.CHOICE, ["干性", "油性", "混合", "敏感"]),
    (
        "interests",
        "兴趣",
        "Interests",
        CustomFieldKind.MULTI_CHOICE,
        ["护肤", "彩妆", "母婴", "健身", "旅行"],
    ),
    ("member_card", "会员卡号", "Member card", CustomFieldKind.TEXT, []),
]
DUPLICATE_EVERY = 60  # every 60th demo contact repeats its neighbour's name, city and birthday


def ensure_custom_fields() -> None:
    for position, (key, zh, en, kind, options) in enumerate(CUSTOM_FIELDS):
        CustomField.objects.get_or_create(
            key=key,
            defaults={"label_zh": zh, "label_en": en, "kind": kind, "choices": options, "position": position},
        )


def _demo_custom_values(index: int) -> dict:
    # A separate random stream, so adding fields does not change the rest of a contact's plan.
    rng = random.Random(f"{DEMO_SEED}:custom:{index}")
    values = {}
    if rng.random() < 0.5:
        values["skin_type"] = rng.choice(CUSTOM_FIELDS[0][4])
    if rng.random() < 0.4:
        chosen = set(rng.sample(CUSTOM_FIELDS[1][4], rng.randint(1, 3)))
        values["interests"] = [option for option in CUSTOM_FIELDS[1][4] if option in chosen]
    if rng.random() < 0.3:
        values["member_card"] = f"VIP{rng.randrange(10**7):07d}"
    return values


def plan_contact(index: int, ctx: DemoContext) -> ContactPlan:
    plan = _plan_contact(index, ctx)
    plan.contact.custom_fields = _demo_custom_values(index)
    if index % DUPLICATE_EVERY == DUPLICATE_EVERY - 1:  # a probable duplicate for the duplicates page
        twin, contact = _plan_contact(index - 1, ctx).contact, plan.contact
        contact.name, contact.city, contact.birthday = twin.name, twin.city, twin.birthday
        if twin.birthday is None:  # no birthday to match on: share the twin's email instead
            contact.email = twin.email
    return plan


def _plan_contact(index: int, ctx: DemoContext) -> ContactPlan:
    rng = random.Random(f"{DEMO_SEED}:{index}")
    contact = Contact(
        name=random_name(rng),
        phone=demo_phone(index, rng),
        email=random_email(rng) if rng.random() < 0.3 else "",
        gender=weighted(rng, GENDERS),
        birthday=date(1965, 1, 1) + timedelta(days=rng.randrange(40 * 365)) if rng.random() < 0.6 else None,
        city=rng.choice(CITIES),
        source=weighted(rng, SOURCES),
        owner=rng.choice(ctx.owners),
        tier=ctx.taxonomy.tiers.get(weighted(rng, TIER_SHARE)),
        joined_at=ctx.now - timedelta(days=rng.uniform(1, HISTORY_DAYS)),
    )
    plan = ContactPlan(contact=contact)
    plan.tags = rng.sample(list(ctx.taxonomy.tags.values()), weighted(rng, TAG_COUNT_SHARE))
    plan.events = plan_events(rng, contact, now=ctx.now)
    contact.last_active_at = max(event.occurred_at for event in plan.events)
    if rng.random() < 0.04:
        contact.opted_out = True
        contact.opted_out_reason = rng.choice(OPT_OUT_REASONS)
        contact.opted_out_at = contact.joined_at + (ctx.now - contact.joined_at) * rng.random()
    if rng.random() < 0.15:
        at = contact.joined_at + (ctx.now - contact.joined_at) * rng.random()
        plan.notes = [
            Note(contact=contact, author=contact.owner or ctx.manager, body=rng.choice(NOTES), created_at=at)
        ]
    return plan


def _activity_window(rng: random.Random, joined_at, now):
    """(start, end) of a contact's activity; about one in five went quiet 30–120 days ago (churned)."""
    end = now - timedelta(hours=rng.uniform(1, 72))
    if rng.random() < 0.2:
        churned_at = now - timedelta(days=rng.uniform(30, 120))
        if churned_at > joined_at + timedelta(days=1):
            end = churned_at
    return joined_at, max(end, joined_at + timedelta(minutes=5))


def plan_events(rng: random.Random, contact: Contact, *, now) -> list[Event]:
    """A contact's history: how they arrived, then messages, views, likes, check-ins and purchases
    (some refunded a few days later), at random times in their activity window."""
    start, end = _activity_window(rng, contact.joined_at, now)
    count = rng.choice((rng.randint(3, 10), rng.randint(10, 25), rng.randint(25, 45)))
    moments = sorted(
        (start + (end - start) * rng.random(), weighted(rng, ACTIVITY_KINDS)) for _ in range(count)
    )
    if contact.source in ARRIVAL_KINDS:
        moments.insert(0, (start, ARRIVAL_KINDS[contact.source]))
    events: list[Event] = []
    for at, kind in moments:
        events.append(_event(rng, contact, len(events), kind, at))
        if kind == EventKind.PURCHASE and rng.random() < 0.08:
            refund_at = min(at + timedelta(days=rng.uniform(1, 10)), end)
            purchase = events[-1]
            events.append(
                _event(rng, contact, len(events), EventKind.REFUND, refund_at, amount=purchase.amount,
                       payload={"order_no": purchase.payload["order_no"]})
            )  # fmt: skip
    return events


def _purchase_amount(rng: random.Random) -> Decimal:
    # Log-normal around ¥120: many small baskets, a few big ones.
    return Decimal(f"{min(max(rng.lognormvariate(4.8, 0.7), 9.9), 3000):.2f}")


def _payload(rng: random.Random, kind: str) -> dict:
    if kind == EventKind.PURCHASE:
        return {"order_no": f"DM{rng.randrange(10**10):010d}", "item": rng.choice(PRODUCTS)}
    if kind == EventKind.MESSAGE_IN:
        return {"text": rng.choice(MESSAGES_IN)}
    if kind == EventKind.MESSAGE_OUT:
        return {"text": rng.choice(MESSAGES_OUT)}
    if kind == EventKind.CONTENT_VIEW:
        return {"title": rng.choice(CONTENT)}
    if kind == EventKind.CHECK_IN:
        return {"store": rng.choice(STORES)}
    return {}


def _event(rng, contact: Contact, n: int, kind: str, at, *, amount=None, payload=None) -> Event:
    if kind == EventKind.PURCHASE:
        amount = _purchase_amount(rng)
    return Event(
        contact=contact, kind=kind, occurred_at=at, amount=amount,
        payload=payload if payload is not None else _payload(rng, kind),
        source=EventSource.DEMO, idempotency_key=f"demo:{contact.phone}:{n}",
    )  # fmt: skip


def _rule(*children: dict) -> dict:
    return {"type": "group", "match": "all", "children": list(children)}


def ensure_demo_segments(taxonomy: Taxonomy, manager) -> None:
    """A few segments of the kind the articles describe (用户分层), filled at once; missing ones are made."""
    spicy = taxonomy.tags[("口味偏好", "辣")]
    gold = taxonomy.tiers["金卡"]
    rules = {
        "金卡及以上 · 爱吃辣": _rule(
            {"type": "tier_rank", "min": gold.rank, "max": None},
            {"type": "tags", "op": "has_any", "tags": [spicy.pk]},
        ),
        "30 天未互动": _rule(
            {"type": "field", "field": "last_active_at", "op": "more_than_days_ago", "value": 30}
        ),
        "近 90 天消费 ≥ 200 元": _rule(
            {"type": "events", "kind": "purchase", "measure": "sum", "op": "gte", "value": "200", "days": 90}
        ),
        "七天内过生日": _rule({"type": "birthday_within", "days": 7}),
    }
    for name, rule in rules.items():
        segment, created = Segment.objects.get_or_create(
            name=name, defaults={"definition": rule, "created_by": manager}
        )
        if created:
            segment_refresh(segment_id=segment.pk)


# The three sequences the articles describe (seed 001: 欢迎语 → 破冰 → 建立信任 → 转化 → 推荐), in Chinese.
DEMO_SOPS = [
    {
        "name": "新客欢迎",
        "description": "新加好友的客户：欢迎语 → 破冰 → 建立信任 → 转化 → 推荐，两周走完。",
        "trigger": Trigger.CONTACT_ADDED,
        "priority": 10,
        "steps": [
            (
                "欢迎语",
                0,
                time(10, 0),
                "{{ contact.name }}您好，我是您的专属顾问{{ owner.name }}，有任何问题随时找我～",
            ),
            (
                "破冰",
                1,
                time(10, 0),
                "{{ contact.name }}，想了解一下您平时的口味偏好，方便给您推荐合适的新品～",
            ),
            ("建立信任", 3, time(20, 0), "分享一篇我们的原料溯源故事给您，{{ contact.name }}有空可以看看。"),
            (
                "转化",
                7,
                time(10, 0),
                "{{ contact.name }}，本周新客专享价，需要的话我帮您留一份？{{ unsubscribe }}",
            ),
            (
                "推荐",
                14,
                time(10, 0),
                "如果喜欢我们的产品，欢迎推荐给朋友，双方都有小惊喜～{{ unsubscribe }}",
            ),
        ],
    },
    {
        "name": "生日关怀",
        "description": "生日前 3 天提醒顾问送上祝福和小礼物。",
        "trigger": Trigger.BIRTHDAY,
        "birthday_days_before": 3,
        "priority": 20,
        "steps": [
            (
                "生日祝福",
                0,
                time(10, 0),
                "{{ contact.name }}，提前祝您生日快乐！给您准备了一份生日小礼物，记得查收～",
            )
        ],
    },
    {
        "name": "沉睡唤醒",
        "description": "30 天未互动的客户：关心问候 → 专属优惠 → 最后提醒；客户回复或下单即退出。",
        "trigger": Trigger.SEGMENT_ENTERED,
        "segment": "30 天未互动",
        "exit_on_purchase": True,
        "exit_on_reply": True,
        "priority": 5,
        "steps": [
            ("关心问候", 0, time(10, 0), "{{ contact.name }}，好久不见，最近还好吗？"),
            (
                "专属优惠",
                3,
                time(19, 30),
                "{{ contact.name }}，为老朋友准备了一张专属优惠券，7 天内有效。{{ unsubscribe }}",
            ),
            (
                "最后提醒",
                7,
                time(10, 0),
                "优惠券明天就到期啦，{{ contact.name }}需要帮您下单吗？{{ unsubscribe }}",
            ),
        ],
    },
]
DEMO_SOP_ENROLLED = 40  # sleeping customers enrolled in 沉睡唤醒 three days ago, so the inboxes have work


def ensure_demo_sops() -> None:
    """The three demo templates, active; the first sleeping customers enrolled in 沉睡唤醒 three days ago and
    dispatched, so each operator's inbox has today's and overdue tasks. Missing templates are made."""
    now = timezone.now()
    for spec in DEMO_SOPS:
        if SopTemplate.objects.filter(name=spec["name"]).exists():
            continue
        segment = Segment.objects.get(name=spec["segment"]) if "segment" in spec else None
        template = SopTemplate.objects.create(
            name=spec["name"], description=spec["description"], trigger=spec["trigger"], priority=spec["priority"],
            birthday_days_before=spec.get("birthday_days_before", 0), trigger_segment=segment,
            exit_on_purchase=spec.get("exit_on_purchase", False), exit_on_reply=spec.get("exit_on_reply", False),
            active=True, activated_at=now,
        )  # fmt: skip
        for position, (name, day, clock, content) in enumerate(spec["steps"], start=1):
            SopStep.objects.create(template=template, position=position, name=name, offset_days=day,
                                   offset_time=clock, content=content)  # fmt: skip
        if segment is not None:
            members = SegmentMembership.objects.filter(segment=segment).order_by("contact_id")
            ids = list(members.values_list("contact_id", flat=True)[:DEMO_SOP_ENROLLED])
            enrollments_start(
                template=template,
                source=pairs_source([(cid, "demo") for cid in ids]),
                now=now - timedelta(days=3),
            )
    dispatch_due()


@dataclass
class SeedReport:
    users_created: int = 0
    contacts_created: int = 0
    events_created: int = 0
    notes_created: int = 0
    logins: list[tuple[str, str, Role]] = field(default_factory=list)  # username, password, role


def _save_new_plans(plans: list[ContactPlan], report: SeedReport) -> None:
    """Save the planned contacts whose phone is not in the database yet, with their tags, events, notes."""
    existing = set(
        Contact.objects.filter(phone__in=[p.contact.phone for p in plans]).values_list("phone", flat=True)
    )
    fresh = [plan for plan in plans if plan.contact.phone not in existing]
    Contact.objects.bulk_create([plan.contact for plan in fresh])
    ContactTag.objects.bulk_create(
        [
            ContactTag(contact=p.contact, tag=tag, added_at=p.contact.joined_at)
            for p in fresh
            for tag in p.tags
        ],
        ignore_conflicts=True,
    )
    # The idempotency key is the guard: a replayed key is skipped by the unique index.
    Event.objects.bulk_create([e for p in fresh for e in p.events], batch_size=1000, ignore_conflicts=True)
    # Rows inserted here, not through events_record: put them in the pipeline's inbox ourselves.
    events_owed_to_pipeline(
        Event.objects.filter(contact__in=[p.contact for p in fresh]).values_list("id", flat=True)
    )
    Note.objects.bulk_create([note for p in fresh for note in p.notes])
    report.contacts_created += len(fresh)
    report.events_created += sum(len(p.events) for p in fresh)
    report.notes_created += sum(len(p.notes) for p in fresh)


@transaction.atomic
def seed_demo(*, contacts: int = 300) -> SeedReport:
    """Create whatever of the demo data set is missing; see the module docstring."""
    users, users_created = ensure_demo_users()
    ensure_custom_fields()
    report = SeedReport(users_created=users_created)
    operators = [users[spec.username] for spec in DEMO_USERS if spec.role == Role.OPERATOR]
    ctx = DemoContext(
        now=timezone.now(),
        owners=operators * 8 + [None] * 2,  # about 8% unassigned
        taxonomy=ensure_taxonomy(),
        manager=users["manager"],
    )
    for start in range(0, contacts, BATCH_SIZE):
        plans = [plan_contact(i, ctx) for i in range(start, min(start + BATCH_SIZE, contacts))]
        _save_new_plans(plans, report)
    # The demo's events went in by bulk insert; the pipeline gives the contacts their activity totals.
    pipeline.process_pending_events()
    ensure_demo_segments(ctx.taxonomy, users["manager"])
    ensure_demo_sops()
    report.logins = [(spec.username, DEMO_PASSWORD, spec.role) for spec in DEMO_USERS]
    return report
