"""schemathesis against /api/v1/openapi.json: generated requests (valid and not) never get a server error.

Bounded: 25 examples per operation, derandomized (the same cases every run), with a key holding every scope
and one existing contact, so requests get past auth into the code that could break.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# Fetching the schema touches no database, so it can happen at collection time.
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())


@pytest.fixture(autouse=True)
def keep_the_test_transaction():
    """The real WSGI handler closes "old" connections after each request, which on PostgreSQL would close
    the test's transaction; Django's own test client disconnects the same signal handlers."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_no_server_errors(case, full_key, contact):
    response = case.call(headers={"Authorization": f"Bearer {full_key}"})
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code}"
