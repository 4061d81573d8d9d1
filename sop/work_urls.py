from django.urls import path

from . import work_views as views

urlpatterns = [
    path("inbox/", views.inbox, name="sop_inbox"),
    path("inbox/badge/", views.inbox_badge, name="sop_inbox_badge"),
    path("tasks/<int:pk>/done/", views.task_done, name="sop_task_done"),
    path("tasks/<int:pk>/skip/", views.task_skip, name="sop_task_skip"),
    path("team/", views.team, name="sop_team"),
    path("team/reassign/", views.team_reassign, name="sop_team_reassign"),
    path("results/", views.results, name="sop_results"),
    path("results/<int:pk>/", views.results_detail, name="sop_results_detail"),
]
