from django.urls import include, path

urlpatterns = [
    # Admins: templates, their steps, the guards' settings.
    path("templates/", include("sop.template_urls")),
    # Everyone: the inbox of SOP tasks; managers: their team's overdue tasks and the results.
    path("", include("sop.work_urls")),
]
