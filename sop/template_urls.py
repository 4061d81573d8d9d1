from django.urls import path

from . import template_views as views

urlpatterns = [
    path("", views.template_list, name="sop_template_list"),
    path("new/", views.template_create, name="sop_template_create"),
    path("settings/", views.sop_settings_edit, name="sop_settings"),
    path("enroll-selection/", views.enroll_selection, name="sop_enroll_selection"),
    path("<int:pk>/", views.template_detail, name="sop_template_detail"),
    path("<int:pk>/edit/", views.template_edit, name="sop_template_edit"),
    path("<int:pk>/activate/", views.template_activate, name="sop_template_activate"),
    path("<int:pk>/deactivate/", views.template_deactivate, name="sop_template_deactivate"),
    path("<int:pk>/duplicate/", views.template_duplicate, name="sop_template_duplicate"),
    path("<int:pk>/enroll/", views.template_enroll_segment, name="sop_template_enroll"),
    path("<int:pk>/steps/new/", views.step_create, name="sop_step_create"),
    path("<int:pk>/steps/preview/", views.step_preview, name="sop_step_preview"),
    path("<int:pk>/steps/contacts/", views.step_preview_contacts, name="sop_step_preview_contacts"),
    path("<int:pk>/steps/<int:step_pk>/edit/", views.step_edit, name="sop_step_edit"),
    path("<int:pk>/steps/<int:step_pk>/delete/", views.step_delete, name="sop_step_delete"),
    path("<int:pk>/steps/<int:step_pk>/move/", views.step_move, name="sop_step_move"),
]
