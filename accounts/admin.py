from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from .models import User
from .roles import Role


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Django's user admin plus our fields. Roles are best given in the app (Users and roles),
    which keeps exactly one role group and is_staff in step; here they are plain groups."""

    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        (_("SCRM"), {"fields": ("display_name", "manager", "time_zone")}),
    )
    add_fieldsets = (
        *DjangoUserAdmin.add_fieldsets,
        (_("SCRM"), {"classes": ("wide",), "fields": ("display_name", "manager", "time_zone")}),
    )
    list_display = ("username", "display_name", "email", "manager", "is_active", "is_staff", "last_login")
    list_filter = ("groups", "is_active", "is_staff", "is_superuser")
    list_select_related = ("manager",)
    search_fields = ("username", "display_name", "first_name", "last_name", "email")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "manager":
            kwargs["queryset"] = User.objects.filter(groups__name=Role.MANAGER.value).order_by("username")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
