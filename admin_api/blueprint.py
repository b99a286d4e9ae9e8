"""The blueprint of the administration API (function-key protected HTTP endpoints), its routes
bounded like every route (``admin_api.http.Blueprint``)."""

from admin_api.http import Blueprint

bp = Blueprint()
