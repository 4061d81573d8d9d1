"""Static segment pages, included by segments/urls.py under /segments/."""

from django.urls import path

from . import static_views

urlpatterns = [
    path("new/static/", static_views.static_segment_new, name="segment_static_new"),
    path("from-selection/", static_views.static_segment_from_selection, name="segment_static_from_selection"),
    path("<int:pk>/members/add/", static_views.static_segment_add_members, name="segment_static_add"),
    path(
        "<int:pk>/members/remove/", static_views.static_segment_remove_members, name="segment_static_remove"
    ),
    path("<int:pk>/snapshot/", static_views.segment_snapshot_create, name="segment_snapshot"),
]
