"""SeatSync Function App: registers the blueprints, nothing else."""

import azure.functions as func

from admin_api import bp as admin_api_bp
from dashboard import bp as dashboard_bp
from durable_blueprint import DFApp
from notify import bp as notify_bp
from psa_push import bp as psa_push_bp
from sync_orchestrator import bp as sync_orchestrator_bp
from tenant_activity import bp as tenant_activity_bp

app = DFApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(sync_orchestrator_bp)
app.register_functions(tenant_activity_bp)
app.register_functions(psa_push_bp)
app.register_functions(notify_bp)
app.register_functions(admin_api_bp)
app.register_functions(dashboard_bp)
