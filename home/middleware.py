from home.context_processors import SESSION_KEY

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class NavCountsMiddleware:
    """A POST (an order, a decision, a revocation) may change what the header counts: the
    session's copy of the counts is dropped, so the page after it counts afresh."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if request.method not in SAFE_METHODS and session is not None and SESSION_KEY in session:
            del session[SESSION_KEY]
        return self.get_response(request)
