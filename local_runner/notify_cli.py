"""``seatsync notify``: see and test notifications before relying on them.

- ``notify preview [--run RUN_ID|latest] [--output-dir DIR] [--sample]`` renders the Teams card
  and the email of a run to files, sending nothing. Every alert of the run is shown (digests are
  not applied). Without a recorded run, or with ``--sample``, a built-in sample run with one
  alert of every kind is rendered instead; the output says which.
- ``notify send-test`` sends the sample run's alerts, marked as a test, to every configured
  channel now, and prints each channel's result. It exits 0 when every channel took it, 1 when
  some did and some failed, 2 when none did.

``add_commands(subparsers)`` adds both to the ``seatsync`` command line.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local_runner.wiring import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, build_services
from shared.errors import ConfigError

DEFAULT_OUTPUT_DIR = "seatsync-notify-preview"
CARD_FILE = "teams-message.json"
CARD_CONTENT_FILE = "adaptive-card.json"
HTML_FILE = "email.html"
TEXT_FILE = "email.txt"


@dataclass(frozen=True)
class PreviewFiles:
    source: str
    alerts: int
    excluded: int
    card: Path
    card_content: Path
    html: Path
    text: Path
    card_bytes: int
    subject: str


def write_preview(services: Any | None, run: str | None, output_dir: Path, *,
                  now: datetime | None = None) -> PreviewFiles:
    """Render a run's card and email (or the sample's, when ``services`` is None or there is no
    run) into ``output_dir``. ``run`` is a run id, ``latest`` or None (latest)."""
    from shared.config.schema import SeatSyncConfig
    from shared.notifications.alerts import Links
    from shared.notifications.render import message_bytes
    from shared.notifications.sample import sample_run_data
    from shared.notifications.service import gather_run_data, links_for, render_preview

    now = now or datetime.now(UTC)
    config = services.config() if services is not None else SeatSyncConfig()
    settings = config.notifications
    run_id = None
    if services is not None:
        run_id = services.runs.latest_run_id() if run in (None, "latest") else run
        if run not in (None, "latest") and services.runs.request(run_id) is None:
            raise ConfigError(f"no run {run_id} is recorded", source="notify preview")
    if services is not None and run_id is not None:
        data = gather_run_data(services.runs, services.snapshots, config, run_id)
        links = links_for(services, settings)
        source = f"run {run_id}"
        banner = None
    else:
        data = sample_run_data(now)
        links = (links_for(services, settings) if services is not None
                 else Links(base_url=settings.link_base_url or "https://seatsync.example.com"))
        source = "the built-in sample run (no run is recorded yet)" if services is not None else \
            "the built-in sample run"
        banner = "Preview with sample data"
    preview = render_preview(data, settings, links, now, config, banner=banner)
    output_dir.mkdir(parents=True, exist_ok=True)
    files = PreviewFiles(
        source=source, alerts=len(preview.alerts.alerts), excluded=preview.alerts.excluded,
        card=output_dir / CARD_FILE, card_content=output_dir / CARD_CONTENT_FILE,
        html=output_dir / HTML_FILE, text=output_dir / TEXT_FILE,
        card_bytes=message_bytes(preview.card), subject=preview.email.subject,
    )
    files.card.write_text(json.dumps(preview.card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    content = preview.card["attachments"][0]["content"]
    files.card_content.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    files.html.write_text(preview.email.html, encoding="utf-8")
    files.text.write_text(preview.email.text, encoding="utf-8")
    return files


def cmd_notify_preview(args: argparse.Namespace) -> int:

    services = None if args.sample else build_services(args)
    files = write_preview(services, args.run, Path(args.output_dir))
    print(f"Notification preview of {files.source}: {files.alerts} alerts"
          + (f" ({files.excluded} excluded by the configuration)" if files.excluded else "")
          + "; digests are not applied, nothing was sent.")
    print(f"  Teams message  {files.card}  ({files.card_bytes:,} bytes; Teams accepts up to about 28 KB)")
    print(f"  Adaptive Card  {files.card_content}  (paste into https://adaptivecards.io/designer, host app "
          "Microsoft Teams)")
    print(f"  email (HTML)   {files.html}")
    print(f"  email (text)   {files.text}")
    print(f"  email subject  {files.subject}")
    return EXIT_OK


def cmd_notify_send_test(args: argparse.Namespace) -> int:
    from shared.notifications.sample import sample_run_data
    from shared.notifications.service import NotifyServices, send_test

    services = NotifyServices.from_services(build_services(args))
    results = send_test(services, sample_run_data(datetime.now(UTC)))
    for result in results:
        if result.status == "sent":
            print(f"  {result.channel}: sent ({result.sent} sample alerts, {result.attempts} attempt(s))")
        else:
            print(f"  {result.channel}: FAILED after {result.attempts} attempt(s): {result.error}")
    return send_test_status([result.status == "sent" for result in results])


def send_test_status(delivered: list[bool]) -> int:
    """0 when every channel took the test, 1 when some did and some failed, 2 when none did
    (nothing was delivered: the README's "failed")."""
    if all(delivered):
        return EXIT_OK
    return EXIT_PARTIAL if any(delivered) else EXIT_FAILED


def add_commands(subparsers: Any) -> None:
    """Add ``notify preview`` and ``notify send-test`` to the ``seatsync`` subcommands."""
    notify = subparsers.add_parser("notify", help="preview and test Teams and email notifications")
    commands = notify.add_subparsers(dest="notify_command", required=True)
    preview = commands.add_parser(
        "preview", help="render a run's Teams card and email to files, without sending")
    preview.add_argument("--run", default="latest", metavar="RUN_ID",
                         help="a run id, or 'latest' (default); the sample run when none is recorded")
    preview.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR, metavar="DIR",
                         help=f"where to write the files (default ./{DEFAULT_OUTPUT_DIR})")
    preview.add_argument("--sample", action="store_true",
                         help="render the built-in sample run (needs no storage or settings)")
    preview.set_defaults(handler=cmd_notify_preview)
    test = commands.add_parser("send-test", help="send a test message with sample alerts to every channel")
    test.set_defaults(handler=cmd_notify_send_test)
