"""Per-user figures a session keeps for a short while instead of counting them per page.

The header's counts (home.context_processors) and the catalogue's recommendations
(assist.templatetags.assist) are kept at most ``PORTAL_NAV_COUNTS_SECONDS``; every POST
(an order, a decision, a revocation) drops them (home.middleware.NavCountsMiddleware), so
one's own changes show on the next page and what others do within the period.
"""

NAV_COUNTS = "home_nav_counts"
RECOMMENDATIONS = "assist_recommendations"
DROPPED_ON_POST = (NAV_COUNTS, RECOMMENDATIONS)
