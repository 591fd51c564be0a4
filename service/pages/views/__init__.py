"""The pages, one module each: read what the page shows (service/pages/queries.py), shape it, render it.

Every view is `view(pages, request, principal) -> Response`, called only after service/pages/routes.py
has checked that the principal is an auditor and recorded the view in the trail.
"""
