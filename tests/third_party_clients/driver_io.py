"""What the drivers share: read the job (``{"connection": {...}, "steps": [...]}``) from standard
input, run each step, print ``{"results": [...]}``. A step the client raises on gives
``{"error": <exception class>, "status": <HTTP status>, "body": <the answer's JSON or text>}`` and
the next step runs: the tests check refusals as the client sees them."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

Step = dict[str, Any]


def answer_of(response: Any) -> Any:
    """The JSON of an HTTP answer (requests or httpx), else its text."""
    try:
        return response.json()
    except ValueError:
        return response.text


def run(connect: Callable[[dict[str, Any]], Any], operations: dict[str, Callable[[Any, Step], Any]],
        refused: Callable[[BaseException], dict[str, Any] | None]) -> None:
    job = json.load(sys.stdin)
    client = connect(job["connection"])
    results: list[Any] = []
    for step in job["steps"]:
        try:
            results.append(operations[step["op"]](client, step))
        except Exception as exc:  # a refusal is a result to check, not the end of the job
            found = refused(exc)
            if found is None:
                raise
            results.append(found)
    json.dump({"results": results}, sys.stdout, default=str)
