from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.segment_list, name="segment_list"),
    path("new/", views.segment_create, name="segment_create"),
    path("builder/", views.segment_builder, name="segment_builder"),
    path("preview/", views.segment_preview, name="segment_preview"),
    path("<int:pk>/", views.segment_detail, name="segment_detail"),
    path("<int:pk>/edit/", views.segment_edit, name="segment_edit"),
    path("<int:pk>/status/", views.segment_status, name="segment_status"),
    path("<int:pk>/refresh/", views.segment_refresh, name="segment_refresh"),
    path("<int:pk>/duplicate/", views.segment_duplicate, name="segment_duplicate"),
    path("<int:pk>/share/", views.segment_share, name="segment_share"),
    path("<int:pk>/delete/", views.segment_delete, name="segment_delete"),
    path("<int:pk>/bulk/", views.segment_bulk, name="segment_bulk"),
    path("<int:pk>/bulk/<int:job_pk>/", views.segment_bulk_status, name="segment_bulk_status"),
    path("", include("segments.static_urls")),
]
