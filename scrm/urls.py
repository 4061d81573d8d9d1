from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.i18n import set_language

from . import merge_views, views
from .api import urls as api_urls

urlpatterns = [
    path("", views.home, name="home"),
    path("system/status/", views.system_status, name="system_status"),
    path("accounts/", include("accounts.urls")),
    path("contacts/duplicates/", merge_views.duplicate_list, name="duplicate_list"),
    path("contacts/merge/<int:survivor>/<int:duplicate>/", merge_views.contact_merge, name="contact_merge"),
    path("contacts/", include("contacts.urls")),
    path("segments/", include("segments.urls")),
    path("sop/", include("sop.urls")),
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    path("django-admin/", admin.site.urls),
    path("api/v1/", api_urls()),
]
