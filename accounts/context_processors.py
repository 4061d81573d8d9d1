from .roles import Role, role_of


def roles(request):
    role = role_of(getattr(request, "user", None))
    return {
        "role": role,
        "is_operator": role == Role.OPERATOR,
        "is_manager": role == Role.MANAGER,
        "is_admin_role": role == Role.ADMIN,
        "is_manager_or_admin": role in (Role.MANAGER, Role.ADMIN),
    }
