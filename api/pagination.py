from rest_framework import pagination


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """``?limit=&offset=``; 25 by default, at most 200. Bad values fall back to the default."""

    default_limit = 25
    max_limit = 200
