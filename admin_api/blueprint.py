"""The blueprint of the administration API (function-key protected HTTP endpoints)."""

import azure.durable_functions as df

bp = df.Blueprint()
