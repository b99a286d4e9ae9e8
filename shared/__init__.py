"""SeatSync business logic: the pure core, the ports, their adapters and the service layer.

Nothing in this package imports Azure Functions; the trigger blueprints call into it.
"""
