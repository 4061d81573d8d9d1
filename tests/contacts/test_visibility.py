from contacts.models import Contact
from contacts.selectors import contacts_visible_to


def test_scopes_by_role(
    operator, other_operator, manager, admin_user, django_user_model, contact, other_contact
):
    unassigned = Contact.objects.create(name="公海客户")
    outsider_manager = django_user_model.objects.create_user("m2")
    from django.contrib.auth.models import Group

    outsider_manager.groups.add(Group.objects.get(name="Manager"))
    outsider_op = django_user_model.objects.create_user("op3", manager=outsider_manager)
    outsider_op.groups.add(Group.objects.get(name="Operator"))
    outsider_contact = Contact.objects.create(name="别的团队", owner=outsider_op)

    def names(user):
        return set(contacts_visible_to(user).values_list("name", flat=True))

    assert names(operator) == {contact.name}
    assert names(other_operator) == {other_contact.name}
    assert names(manager) == {contact.name, other_contact.name, unassigned.name}
    assert names(outsider_manager) == {outsider_contact.name, unassigned.name}
    assert names(admin_user) == {contact.name, other_contact.name, unassigned.name, outsider_contact.name}


def test_user_without_role_sees_nothing(db, django_user_model, contact):
    nobody = django_user_model.objects.create_user("nobody")
    assert not contacts_visible_to(nobody).exists()
