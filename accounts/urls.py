from django.contrib.auth import views as auth_views
from django.urls import path

from . import api_key_views, views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("profile/", views.profile, name="profile"),
    path("users/", views.user_list, name="user_list"),
    path("users/new/", views.user_create, name="user_create"),
    path("users/<int:pk>/", views.user_edit, name="user_edit"),
    path("api-keys/", api_key_views.api_key_list, name="api_key_list"),
    path("api-keys/new/", api_key_views.api_key_new, name="api_key_create"),
    path("api-keys/<int:pk>/revoke/", api_key_views.api_key_revoke_view, name="api_key_revoke"),
]
