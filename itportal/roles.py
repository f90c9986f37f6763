"""Roles are Django groups; 'approver' follows from the data, not from a group."""

IT_ADMIN = "IT-Administration"
CONTROLLING = "IT-Controlling"


def group_ids(user) -> frozenset[int]:
    """The user's group ids, loaded once per user object."""
    if not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_portal_group_ids", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("id", flat=True))
        user._portal_group_ids = cached
    return cached


def group_names(user) -> frozenset[str]:
    if not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_portal_group_names", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        user._portal_group_names = cached
    return cached


def is_it_admin(user) -> bool:
    return user.is_authenticated and (user.is_superuser or IT_ADMIN in group_names(user))


def is_controlling(user) -> bool:
    return user.is_authenticated and (user.is_superuser or CONTROLLING in group_names(user))
