"""Role fixtures used on every view: the owning operator, another operator, a manager, an admin.

The manager manages both operators (their team); `contact` is owned by `operator`.
"""

import functools
import os

import pytest
from django.apps import apps as global_apps
from django.contrib.auth.models import Group
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import RunPython
from django.db.models.signals import post_migrate

from accounts.roles import Role
from contacts.models import Contact, Tag, TagGroup, Tier
from scrm.celery import app as celery_app

REQUIRE_SERVICES = os.environ.get("SCRM_REQUIRE_SERVICES", "").lower() in {"1", "true", "yes"}


def need_service(reason: str):
    """A test that needs a real service: fails under SCRM_REQUIRE_SERVICES=1 (CI), skips otherwise."""
    if REQUIRE_SERVICES:
        pytest.fail(f"SCRM_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


@functools.cache
def _role_grant_functions():
    """The RunPython functions of our data migrations that create role groups and grant permissions."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return [
        operation.code
        for migration in loader.disk_migrations.values()
        for operation in migration.operations
        if isinstance(operation, RunPython) and "grant_permissions" in operation.code.__code__.co_names
    ]


def restore_role_groups(sender, using="default", **kwargs):
    """A transactional test (live_server, real worker) ends with a flush, which also empties the role
    groups the data migrations made; every later test would then find no Operator/Manager/Admin.
    The flush sends post_migrate, so run those data migrations again here (they are idempotent)
    rather than snapshotting the database (serialized_rollback, which clashes with the content types
    the same signal recreates)."""
    for grant in _role_grant_functions():
        grant(global_apps, None)


post_migrate.connect(restore_role_groups, sender=global_apps.get_app_config("scrm"), weak=False)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """PBKDF2's deliberate slowness is for production; tests create users by the hundred."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def clear_cache():
    """With REDIS_URL set the cache outlives a test; cached aggregates must not leak between tests."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def eager_celery():
    """Tasks run inline unless a test starts a real worker (tests/scrm/test_worker.py)."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def make_user(django_user_model, username: str, role: Role | None, **extra):
    user = django_user_model.objects.create_user(username=username, password="pw-for-tests-1", **extra)
    if role:
        user.groups.add(Group.objects.get(name=role.value))
    if role == Role.ADMIN:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return user


@pytest.fixture
def manager(db, django_user_model):
    return make_user(django_user_model, "manager", Role.MANAGER, display_name="王经理")


@pytest.fixture
def operator(db, django_user_model, manager):
    return make_user(django_user_model, "operator", Role.OPERATOR, display_name="李运营", manager=manager)


@pytest.fixture
def other_operator(db, django_user_model, manager):
    return make_user(django_user_model, "other", Role.OPERATOR, display_name="赵运营", manager=manager)


@pytest.fixture
def admin_user(db, django_user_model):
    return make_user(django_user_model, "admin", Role.ADMIN, display_name="管理员")


@pytest.fixture
def tier(db):
    return Tier.objects.create(name="金卡", rank=3, colour="#c9a227")


@pytest.fixture
def tag(db):
    group = TagGroup.objects.create(name="口味偏好")
    return Tag.objects.create(group=group, name="辣", colour="#dc3545")


@pytest.fixture
def contact(db, operator):
    return Contact.objects.create(name="张三", phone="+8613800138000", owner=operator, city="上海")


@pytest.fixture
def other_contact(db, other_operator):
    return Contact.objects.create(name="李四", phone="+8613900139000", owner=other_operator)


def client_for(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def role_client(client, operator, other_operator, manager, admin_user):
    """role_client("operator" | "other" | "manager" | "admin" | "anon") -> a logged-in test client."""
    users = {"operator": operator, "other": other_operator, "manager": manager, "admin": admin_user}

    def _client(name: str):
        client.logout()
        if name != "anon":
            client.force_login(users[name])
        return client

    return _client
