"""The billing admin's dashboard: server-rendered pages (Jinja2 templates, htmx, Chart.js)
served by the Function App under ``/api/dashboard``. Signed-in users only (App Service
Authentication with Entra ID); what each may do follows their app role (admin_api.auth)."""

from dashboard import routes  # noqa: F401  (importing registers the routes)
from dashboard.blueprint import bp

__all__ = ["bp"]
