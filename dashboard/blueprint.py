"""The blueprint of the billing admin's dashboard (pages signed in through App Service
Authentication; see dashboard.web), its routes bounded like every route
(``admin_api.http.Blueprint``: body size, nesting and route ids)."""

from admin_api.http import Blueprint

bp = Blueprint()
