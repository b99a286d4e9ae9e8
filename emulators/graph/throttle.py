"""Resource-unit budgets of Microsoft Graph's identity and access service.

Entra ID throttles per app and tenant on resource units (RU) spent in a sliding 10-second
window: 3,500 / 5,000 / 8,000 RU for tenants with fewer than 50 / 50-500 / more than 500 users.
A request's cost depends on the operation; ``$select`` lowers it by one and ``$top`` below 20
lowers it by one (never below one). A request that would overspend gets 429 with a
``Retry-After`` of the seconds until enough units leave the window; it costs nothing.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

# Base cost of a GET on each resource of the identity service (the rest of Graph, e.g. Intune,
# reports and mail, has its own limits and is not budgeted here).
BASE_COSTS = {
    "users": 2,
    "user": 1,
    "subscribedSkus": 3,
    "organization": 1,
    "directory/subscriptions": 1,
    "groups": 2,
    "group": 1,
    "members": 2,
    "devices": 2,
    "count": 1,
}
WINDOW_SECONDS = 10.0


def request_cost(resource: str, has_select: bool, top: int | None) -> int:
    cost = BASE_COSTS.get(resource, 1)
    if has_select:
        cost -= 1
    if top is not None and top < 20:
        cost -= 1
    return max(1, cost)


class ResourceUnitBudget:
    """Sliding-window spend per tenant; thread-safe and O(1) amortised per request."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._spent: dict[str, deque[tuple[float, int]]] = {}
        self._totals: dict[str, int] = {}

    def charge(self, tenant_id: str, limit: int, cost: int) -> int | None:
        """Spend ``cost`` units, or return the whole seconds to wait when over ``limit``."""
        now = self._clock()
        with self._lock:
            window = self._spent.setdefault(tenant_id, deque())
            total = self._totals.get(tenant_id, 0)
            while window and window[0][0] <= now - WINDOW_SECONDS:
                total -= window.popleft()[1]
            if total + cost <= limit:
                window.append((now, cost))
                self._totals[tenant_id] = total + cost
                return None
            self._totals[tenant_id] = total
            freed = 0
            wait = WINDOW_SECONDS
            for at, units in window:
                freed += units
                if total - freed + cost <= limit:
                    wait = at + WINDOW_SECONDS - now
                    break
            return max(1, math.ceil(wait))

    def clear(self) -> None:
        with self._lock:
            self._spent.clear()
            self._totals.clear()
