"""Scenario `contacts` (issue 2): server time of the contact list page.

Each request goes through the Django test client as the bench admin, who sees every contact, so
the time covers the whole server side: middleware, session and user lookup, the list's queries and
the template. Target at a million contacts: every median at or under 100 ms.
"""

from functools import partial
from urllib.parse import urlencode

from django.test import Client
from django.urls import reverse

from ..data import Dataset, display_phone
from ..runner import BenchFailure, Result, median_ms

# list_cursor_page4 follows the X-Next-Cursor header this many times from the first page.
CURSOR_STEPS = 3


def get_ok(client: Client, url: str, params: dict):
    response = client.get(url, params)
    if response.status_code != 200:
        raise BenchFailure(
            f"GET {url}?{urlencode(params, doseq=True)} answered {response.status_code}, not 200"
        )
    return response


def cursor_after(client: Client, url: str, *, steps: int) -> str:
    """The cursor of page steps+1, reached by following X-Next-Cursor from the first page."""
    cursor = None
    for step in range(1, steps + 1):
        response = get_ok(client, url, {"cursor": cursor} if cursor else {})
        cursor = response.headers.get("X-Next-Cursor")
        if not cursor:
            raise BenchFailure(
                f"page {step} of {url} has no X-Next-Cursor header: too few contacts for page {steps + 1}"
            )
    return cursor


def run(dataset: Dataset, *, runs: int) -> list[Result]:
    client = Client()
    client.force_login(dataset.admin)
    url = reverse("contact_list")
    measurements = {
        "list_first_page": {},
        "list_tag_filter": {"tag": dataset.filter_tag_id},
        # Typed the way people do, with spaces; the view must normalise it to the E.164 lookup.
        "list_phone_search": {"q": display_phone(dataset.sample_phone)},
        "list_cursor_page4": {"cursor": cursor_after(client, url, steps=CURSOR_STEPS)},
    }
    actions = {name: partial(get_ok, client, url, params) for name, params in measurements.items()}
    return [Result(name=name, median_ms=ms) for name, ms in median_ms(actions, runs=runs).items()]
