"""seatsync: the command line of SeatSync.

Runs a sync in-process (the Function App's own orchestrator and activities), manages the
configuration, and prints run reports. Settings come from the environment, overlaid on a
``local.settings.json`` in the current directory when there is one (the Functions host's local
format), exactly as the deployed app reads its app settings.

Exit status: 0 success, 1 a run finished partially (some tenants or changes failed), 2 a run
failed, 3 bad input or configuration.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.errors import ConfigError, RequestValidationError, SeatSyncError
from shared.settings import Settings, load_local_settings

EXIT_OK, EXIT_PARTIAL, EXIT_FAILED, EXIT_USAGE = 0, 1, 2, 3


def environment(settings_file: Path | None) -> dict[str, str]:
    env: dict[str, str] = {}
    path = settings_file or Path("local.settings.json")
    if settings_file is not None or path.is_file():
        env.update(load_local_settings(path))
    env.update(os.environ)
    return env


def build_services(args: argparse.Namespace) -> Any:
    from shared.bootstrap import Services

    return Services(Settings.from_environment(environment(args.settings)))


def _write(path: str | None, text: str) -> None:
    if path in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(path).write_text(text, encoding="utf-8")


def _exit_for(report: dict[str, Any]) -> int:
    return {"succeeded": EXIT_OK, "partial": EXIT_PARTIAL}.get(report["status"], EXIT_FAILED)


def cmd_sync(args: argparse.Namespace) -> int:
    from local_runner.local_sync import run_local_sync
    from shared.services.report import render_text

    report = run_local_sync(build_services(args), tenants=args.tenant or None, dry_run=args.dry_run,
                            requested_by=args.by, max_workers=args.workers)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(json.dumps(report, indent=2) + "\n" if args.json else render_text(report))
    return _exit_for(report)


def cmd_report(args: argparse.Namespace) -> int:
    from shared.services.report import build_report, render_text

    services = build_services(args)
    run_id = args.run_id
    if run_id == "latest":
        run_id = services.runs.latest_run_id()
        if run_id is None:
            raise ConfigError("no run has been recorded yet", source="report")
    report = build_report(services.runs, run_id, services.config())
    _write(args.output, json.dumps(report, indent=2) + "\n" if args.json else render_text(report))
    return EXIT_OK


def cmd_config_import(args: argparse.Namespace) -> int:
    from local_runner.local_sync import current_user
    from shared.config.yaml_io import load_yaml_file

    config = load_yaml_file(Path(args.file))
    services = build_services(args)
    version = services.config_repository.save(config, args.by or current_user(),
                                              args.comment or f"imported from {Path(args.file).name}")
    print(f"configuration imported as version {version.number} ({version.version_id}): "
          f"{len(config.tenants)} tenants, {len(config.psa_connections)} PSA connections")
    return EXIT_OK


def cmd_config_export(args: argparse.Namespace) -> int:
    from shared.config.yaml_io import to_yaml

    config, version = build_services(args).config_repository.current()
    header = f"# SeatSync configuration, version {version.number if version else 0}\n"
    _write(args.output, header + to_yaml(config))
    return EXIT_OK


def cmd_config_validate(args: argparse.Namespace) -> int:
    from shared.config.yaml_io import load_yaml_file

    config = load_yaml_file(Path(args.file))
    print(f"{args.file}: valid ({len(config.tenants)} tenants, {len(config.psa_connections)} PSA connections)")
    return EXIT_OK


def cmd_config_history(args: argparse.Namespace) -> int:
    for version in build_services(args).config_repository.history():
        print(f"{version.number:5d}  {version.saved_at:%Y-%m-%d %H:%M:%S}Z  {version.saved_by:30s}  {version.comment}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from local_runner.demo import run_demo

    return run_demo(tenants=args.tenants, report_path=args.report, psa=args.psa, keep=args.keep)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="seatsync", description=__doc__.split("\n\n")[0])
    root.add_argument("--settings", type=Path, help="a local.settings.json to read settings from "
                      "(default: ./local.settings.json when present)")
    root.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = root.add_subparsers(dest="command", required=True)

    sync = commands.add_parser("sync", help="run a sync now, in this process")
    sync.add_argument("--dry-run", action="store_true", help="plan only: write nothing to the PSA")
    sync.add_argument("--tenant", action="append", metavar="TENANT_ID", help="only this tenant (repeatable)")
    sync.add_argument("--report", metavar="FILE", help="also write the run report as JSON to FILE")
    sync.add_argument("--json", action="store_true", help="print the report as JSON")
    sync.add_argument("--workers", type=int, default=8, help="tenants collected in parallel (default 8)")
    sync.add_argument("--by", help="who asked for the run (default: the login name)")
    sync.set_defaults(handler=cmd_sync)

    report = commands.add_parser("report", help="print the report of a run")
    report.add_argument("run_id", nargs="?", default="latest", help="a run id, or 'latest'")
    report.add_argument("--json", action="store_true")
    report.add_argument("--output", "-o", metavar="FILE")
    report.set_defaults(handler=cmd_report)

    config = commands.add_parser("config", help="import, export, validate the configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    imp = config_commands.add_parser("import", help="validate a YAML file and make it the configuration")
    imp.add_argument("file")
    imp.add_argument("--by", help="who made the change (default: the login name)")
    imp.add_argument("--comment", help="why (kept in the history)")
    imp.set_defaults(handler=cmd_config_import)
    exp = config_commands.add_parser("export", help="write the current configuration as YAML")
    exp.add_argument("--output", "-o", metavar="FILE")
    exp.set_defaults(handler=cmd_config_export)
    val = config_commands.add_parser("validate", help="check a YAML file without storing it")
    val.add_argument("file")
    val.set_defaults(handler=cmd_config_validate)
    hist = config_commands.add_parser("history", help="who changed the configuration, and when")
    hist.set_defaults(handler=cmd_config_history)

    from local_runner import billing_cli, config_cli, notify_cli

    billing_cli.add_commands(commands)
    config_cli.add_commands(commands)
    notify_cli.add_commands(commands)

    demo = commands.add_parser("demo", help="start Azurite and the emulators with a sample MSP and sync it")
    demo.add_argument("--tenants", type=int, default=0,
                      help="generate an MSP of N tenants instead of the sample MSP")
    demo.add_argument("--psa", default="connectwise", choices=["connectwise", "autotask", "halopsa"],
                      help="the PSA to bill through")
    demo.add_argument("--report", metavar="FILE", help="also write the run report as JSON to FILE")
    demo.add_argument("--keep", action="store_true",
                      help="keep Azurite and the emulators running after the sync (Ctrl-C stops)")
    demo.set_defaults(handler=cmd_demo)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"seatsync: {exc.source}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_USAGE
    except RequestValidationError as exc:
        print(f"seatsync: {exc.field}: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except SeatSyncError as exc:
        print(f"seatsync: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
