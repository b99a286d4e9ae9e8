"""A Teams Workflows webhook receiver.

Office 365 connector webhooks are retired; a Teams channel now receives posts through the URL of
a Workflows (Power Automate) flow started by "When a Teams webhook request is received". The
flow accepts a message envelope carrying Adaptive Cards::

    {"type": "message",
     "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                      "contentUrl": null,
                      "content": {"type": "AdaptiveCard", "version": "1.5", "body": [...]}}]}

and answers 202 Accepted. This receiver validates that envelope (400 with a message in the
trigger's error shape otherwise), records every accepted post for read-back and serves both the
short path ``/workflows/{id}`` and the full trigger paths Workflows hands out
(``/workflows/{id}/triggers/manual/paths/invoke`` with or without the
``/powerautomate/automations/direct`` prefix).

Scenario section (``teams:``), all keys optional::

    teams:
      workflows: [{id: sales-alerts, sig: abc123}]   # absent: any workflow id is accepted
      faults: [...]                                  # base-class fault rules
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from emulators.base import Emulator, EmulatorError, Request, Response
from emulators.scenario_reader import unknown_key

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_MESSAGE_BYTES = 28 * 1024  # Teams rejects messages larger than about 28 KB
_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_VERSION = re.compile(r"^1\.\d+$")


class TeamsWebhookEmulator(Emulator):
    """Receives Adaptive Card posts as a Teams Workflows webhook does."""

    service = "teams-webhook"

    def __init__(self, scenario_section: Any = None) -> None:
        self.workflows: dict[str, str | None] | None = None
        self.posts: list[dict[str, Any]] = []
        super().__init__(scenario_section or {})

    def register_routes(self) -> None:
        prefix = r"(?:/powerautomate/automations/direct)?"
        suffix = r"(?:/triggers/manual/paths/invoke)?"
        self.route("POST", prefix + r"/workflows/(?P<id>[^/]+)" + suffix, self._post)

    def load(self, section: Any) -> None:
        if not isinstance(section, dict):
            raise EmulatorError(f"teams must be a mapping, got {type(section).__name__}")
        allowed = {"workflows", "faults"}
        unknown = set(section) - allowed
        if unknown:
            raise unknown_key("teams", sorted(unknown)[0], allowed)
        workflows = section.get("workflows")
        self.workflows = None
        if workflows is not None:
            if not isinstance(workflows, list):
                raise EmulatorError("teams.workflows must be a list")
            self.workflows = {}
            for i, item in enumerate(workflows):
                path = f"teams.workflows[{i}]"
                if isinstance(item, str):
                    item = {"id": item}
                if not isinstance(item, dict) or set(item) - {"id", "sig"}:
                    raise EmulatorError(f"{path} must be a workflow id or {{id, sig}}")
                wid = item.get("id")
                if not isinstance(wid, str) or not _ID.match(wid):
                    raise EmulatorError(f"{path}.id must be letters, digits, '.', '_' or '-', got {wid!r}")
                sig = item.get("sig")
                if sig is not None and not isinstance(sig, str):
                    raise EmulatorError(f"{path}.sig must be a string")
                self.workflows[wid] = sig
        self.posts = []

    def state(self) -> dict[str, Any]:
        return {"count": len(self.posts), "posts": list(self.posts)}

    def tenant_of(self, request: Request) -> str | None:
        match = re.search(r"/workflows/([^/]+)", request.path)
        return match.group(1) if match else None

    def posts_for(self, workflow_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [p for p in self.posts if p["workflowId"] == workflow_id]

    def _post(self, request: Request, match: re.Match[str]) -> Response:
        workflow_id = match.group("id")
        if self.workflows is not None:
            if workflow_id not in self.workflows:
                return self.error_response(404, f"The workflow '{workflow_id}' could not be found.",
                                           "WorkflowNotFound")
            expected = self.workflows[workflow_id]
            if expected is not None and request.arg("sig") != expected:
                return self.error_response(
                    401, "The provided signature in the request URL is not valid.",
                    "DirectApiInvalidAuthorizationSignature")
        if len(request.body) > MAX_MESSAGE_BYTES:
            return self.error_response(
                413, f"The message is {len(request.body)} bytes; Teams accepts at most "
                     f"{MAX_MESSAGE_BYTES} bytes.", "MessageTooLarge")
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return self._schema_error(f"the Content-Type must be application/json, got "
                                      f"{content_type or 'none'}")
        try:
            body = json.loads(request.body.decode("utf-8")) if request.body else None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return self._schema_error(f"the body is not JSON: {exc}")
        problem = validate_message(body)
        if problem or not isinstance(body, dict):
            return self._schema_error(problem or "the body must be a JSON object")
        with self.lock:
            self.posts.append({
                "workflowId": workflow_id,
                "receivedAt": datetime.now(UTC).isoformat(),
                "body": body,
                "cards": [a["content"] for a in body["attachments"]],
            })
        return Response(202, None)

    def _schema_error(self, problem: str) -> Response:
        return self.error_response(
            400, "The input body for trigger 'manual' of type 'Request' did not match its schema "
                 f"definition. Error details: {problem}.", "TriggerInputSchemaMismatch")


def validate_message(body: Any) -> str | None:
    """What is wrong with a Workflows message envelope, or None when it is acceptable."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if body.get("type") != "message":
        return f"'type' must be 'message', got {body.get('type')!r}"
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return "'attachments' must be a non-empty array"
    for i, attachment in enumerate(attachments):
        where = f"attachments[{i}]"
        if not isinstance(attachment, dict):
            return f"{where} must be an object"
        if attachment.get("contentType") != CARD_CONTENT_TYPE:
            return f"{where}.contentType must be '{CARD_CONTENT_TYPE}', got {attachment.get('contentType')!r}"
        content = attachment.get("content")
        if not isinstance(content, dict):
            return f"{where}.content must be an Adaptive Card object"
        if content.get("type") != "AdaptiveCard":
            return f"{where}.content.type must be 'AdaptiveCard', got {content.get('type')!r}"
        version = content.get("version")
        if not isinstance(version, str) or not _VERSION.match(version):
            return f"{where}.content.version must be a version such as '1.5', got {version!r}"
        card_body = content.get("body", [])
        if not isinstance(card_body, list):
            return f"{where}.content.body must be an array of elements"
        for j, element in enumerate(card_body):
            if not isinstance(element, dict) or not isinstance(element.get("type"), str):
                return f"{where}.content.body[{j}] must be an element object with a 'type'"
    return None
