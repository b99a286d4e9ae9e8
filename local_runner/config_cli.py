"""``seatsync config``, ``seatsync onboard``, ``seatsync profiles list`` and ``seatsync tenants list``.

- ``config import|export|validate|history``: the configuration document and its versions.

- ``onboard`` lists every GDAP customer tenant with its suggested PSA company, the confidence and
  the reason (docs/onboarding.md). ``--output FILE`` writes the suggestions as an editable review
  file; ``--apply FILE`` applies a reviewed file; ``--accept-high-confidence`` applies every
  high-confidence suggestion of a tenant not yet configured. Applying saves one new
  configuration version, recorded with who (``--by``) and why (``--comment``).
- ``profiles list``: the billing profiles, their price and how many mappings use each.
- ``tenants list``: the configured tenants, their companies (with user filters) and mappings.

``add_commands(subparsers)`` adds the four commands to the ``seatsync`` command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import yaml

from local_runner.wiring import EXIT_OK, build_services, current_user, write_output
from shared.config.input_limits import read_file, read_yaml
from shared.errors import ConfigError
from shared.text import short, table

if TYPE_CHECKING:
    from shared.bootstrap import Services
    from shared.config.schema import SeatSyncConfig


def _who_and_why(parser: argparse.ArgumentParser) -> None:
    """``--by`` and ``--comment`` of a verb that saves a configuration version."""
    parser.add_argument("--by", help="who made the change (default: the login name)")
    parser.add_argument("--comment", help="why (kept in the configuration history)")


def add_commands(subparsers: Any) -> None:
    """Add ``config``, ``onboard``, ``profiles`` and ``tenants`` to the root parser's subcommands."""
    config = subparsers.add_parser("config", help="import, export, validate the configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    imp = config_commands.add_parser("import", help="validate a YAML file and make it the configuration")
    imp.add_argument("file", help="the YAML configuration file (docs/configuration.md)")
    _who_and_why(imp)
    imp.set_defaults(handler=cmd_config_import)
    exp = config_commands.add_parser("export", help="write the current configuration as YAML")
    exp.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    exp.set_defaults(handler=cmd_config_export)
    val = config_commands.add_parser("validate", help="check a YAML file without storing it")
    val.add_argument("file", help="the YAML configuration file to check")
    val.set_defaults(handler=cmd_config_validate)
    hist = config_commands.add_parser("history", help="who changed the configuration, and when")
    hist.set_defaults(handler=cmd_config_history)
    diff = config_commands.add_parser("diff", help="what changed between two configuration versions")
    diff.add_argument("version", nargs="?", metavar="VERSION",
                      help="the older version (default: the one before --to)")
    diff.add_argument("--to", metavar="VERSION", help="the newer version (default: the current one)")
    diff.set_defaults(handler=cmd_config_diff)
    back = config_commands.add_parser("rollback", help="make an earlier version current again (as a new version)")
    back.add_argument("version", metavar="VERSION", help="the version to go back to (see 'config history')")
    _who_and_why(back)
    back.set_defaults(handler=cmd_config_rollback)
    schema = config_commands.add_parser("schema", help="the JSON Schema of the configuration file, for editors")
    schema.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    schema.set_defaults(handler=cmd_config_schema)

    onboard = subparsers.add_parser(
        "onboard", help="match GDAP customer tenants to PSA companies, review and apply",
        description="List every GDAP customer tenant with its suggested PSA company, a confidence and the "
                    "reason; write them to a review file, or apply a reviewed file or the high-confidence ones.")
    onboard.add_argument("--output", "-o", metavar="FILE", help="write the suggestions as an editable review file")
    action = onboard.add_mutually_exclusive_group()
    action.add_argument("--apply", metavar="FILE", help="apply a reviewed file (rows with action: accept)")
    action.add_argument("--accept-high-confidence", action="store_true",
                        help="apply every high-confidence suggestion of a tenant not yet configured")
    onboard.add_argument("--new-only", action="store_true", help="leave out tenants already configured")
    onboard.add_argument("--json", action="store_true", help="print the suggestions as JSON")
    _who_and_why(onboard)
    onboard.set_defaults(handler=cmd_onboard)

    profiles = subparsers.add_parser("profiles", help="billing profiles")
    profile_commands = profiles.add_subparsers(dest="profiles_command", required=True)
    plist = profile_commands.add_parser("list", help="list the billing profiles and how many mappings use each")
    plist.add_argument("--json", action="store_true", help="print the profiles as JSON")
    plist.set_defaults(handler=cmd_profiles_list)

    tenants = subparsers.add_parser("tenants", help="configured tenants")
    tenant_commands = tenants.add_subparsers(dest="tenants_command", required=True)
    tlist = tenant_commands.add_parser("list", help="list the tenants, their companies and mappings")
    tlist.add_argument("--json", action="store_true", help="print the tenants as JSON")
    tlist.set_defaults(handler=cmd_tenants_list)


# ------------------------------------------------------------------------ config


def _refuse_overlaps(args: argparse.Namespace, config: SeatSyncConfig, services: Services | None = None) -> None:
    """Users that two companies' filters both match would be billed twice: refuse the file, naming
    them, from each split tenant's latest snapshot (only then is the table store needed)."""
    from shared.services.config_api import filter_overlaps, split_tenants

    if not split_tenants(config):
        return
    problems = filter_overlaps(config, (services or build_services(args)).snapshots)
    if problems:
        raise ConfigError(problems, args.file)


def cmd_config_import(args: argparse.Namespace) -> int:
    from shared.config.yaml_io import load_yaml_file

    config = load_yaml_file(Path(args.file))
    services = build_services(args)
    _refuse_overlaps(args, config, services)
    version = services.config_repository.save(config, args.by or current_user(),
                                              args.comment or f"imported from {Path(args.file).name}")
    if version.unchanged:
        print(f"unchanged: {args.file} is the current configuration (version {version.number}); no new version")
        return EXIT_OK
    print(f"configuration imported as version {version.number} ({version.version_id}): "
          f"{len(config.tenants)} tenants, {len(config.psa_connections)} PSA connections")
    return EXIT_OK


def cmd_config_export(args: argparse.Namespace) -> int:
    from shared.config.yaml_io import to_yaml

    config, version = build_services(args).config_repository.current()
    header = f"# SeatSync configuration, version {version.number if version else 0}\n"
    write_output(args.output, header + to_yaml(config))
    return EXIT_OK


def cmd_config_validate(args: argparse.Namespace) -> int:
    from shared.config.yaml_io import load_yaml_file

    config = load_yaml_file(Path(args.file))
    _refuse_overlaps(args, config)
    print(f"{args.file}: valid ({len(config.tenants)} tenants, {len(config.psa_connections)} PSA connections)")
    return EXIT_OK


def cmd_config_history(args: argparse.Namespace) -> int:
    for version in build_services(args).config_repository.history():
        print(f"{version.number:5d}  {version.saved_at:%Y-%m-%d %H:%M:%S}Z  {version.saved_by:30s}  {version.comment}")
    return EXIT_OK


def cmd_config_diff(args: argparse.Namespace) -> int:
    from shared.services.config_versions import config_diff, parse_version

    old = parse_version(args.version) if args.version else None
    new = parse_version(args.to, "to") if args.to else None
    diff = config_diff(build_services(args).config_repository, old, new)
    print(f"version {diff.old.number} ({diff.old.saved_at:%Y-%m-%d %H:%M}Z, {diff.old.saved_by}) -> "
          f"version {diff.new.number} ({diff.new.saved_at:%Y-%m-%d %H:%M}Z, {diff.new.saved_by})")
    sys.stdout.write(diff.text or "no difference\n")
    return EXIT_OK


def cmd_config_rollback(args: argparse.Namespace) -> int:
    from shared.services.config_versions import parse_version, rollback

    number = parse_version(args.version)
    version = rollback(build_services(args).config_repository, number, args.by or current_user(), args.comment)
    if version.unchanged:
        print(f"unchanged: version {number} is what is current (version {version.number}); no new version")
    else:
        print(f"version {number} is current again, saved as version {version.number} ({version.version_id})")
    return EXIT_OK


def cmd_config_schema(args: argparse.Namespace) -> int:
    from shared.config.json_schema import config_json_schema_text

    write_output(args.output, config_json_schema_text())
    return EXIT_OK


# ------------------------------------------------------------------------ onboard


def cmd_onboard(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from shared.services.onboarding import (
        REVIEW_HEADER,
        AcceptHighConfidence,
        apply_rows,
        onboarding_suggestions,
        parse_rows,
        review_document,
    )

    out = out or sys.stdout
    document = read_yaml(read_file(Path(args.apply)), args.apply) if args.apply else None
    services = build_services(args)
    by = args.by or current_user()
    if args.apply:
        path = Path(args.apply)
        connections = [c.name for c in services.config().psa_connections]
        rows = parse_rows(document, connections)
        result = apply_rows(services, rows, by, args.comment or f"onboarding: applied {path.name}")
        _print_result(result, out)
        return EXIT_OK
    if args.accept_high_confidence:
        result = apply_rows(services, AcceptHighConfidence(), by, args.comment)
        _print_result(result, out)
        return EXIT_OK
    found, inputs = onboarding_suggestions(services, only_unconfigured=args.new_only)
    for name, why in inputs.unreadable.items():
        print(f"warning: PSA connection '{name}' could not be read: {why}", file=sys.stderr)
    if args.output:
        connections = [c.name for c in services.config().psa_connections]
        new = [s for s in found if not s.configured]  # configured tenants change through the tenants API
        text = REVIEW_HEADER + yaml.safe_dump(review_document(new, connections), sort_keys=False,
                                              allow_unicode=True, width=120)
        Path(args.output).write_text(text, encoding="utf-8")
    if args.json:
        out.write(json.dumps([s.to_json() for s in found], indent=2) + "\n")
    else:
        out.write(render_suggestions(found))
    if args.output:
        print(f"review file written to {args.output}: set action: accept on the rows to add, then run "
              f"seatsync onboard --apply {args.output}", file=out)
    return EXIT_OK


def _print_result(result: Any, out: TextIO) -> None:
    if not result.changed:
        print("nothing to apply: the configuration is unchanged", file=out)
        return
    for tenant in result.added:
        companies = ", ".join(f"{c.psa} {c.company_id} ({c.name})" for c in tenant.companies)
        print(f"added     {tenant.name} ({tenant.tenant_id}) -> {companies}", file=out)
    for tenant in result.replaced:
        companies = ", ".join(f"{c.psa} {c.company_id} ({c.name})" for c in tenant.companies)
        print(f"replaced  {tenant.name} ({tenant.tenant_id}) -> {companies}", file=out)
    print(f"saved as configuration version {result.version.number} ({result.version.version_id})", file=out)


def render_suggestions(suggestions: Sequence[Any], width: int = 72) -> str:
    from shared.services.onboarding import level_counts

    rows = []
    for s in suggestions:
        company = f"{s.best.psa} {s.best.company_id} {s.best.name}" if s.best else "-"
        rows.append(["configured" if s.configured else "new", s.tenant_name, company,
                     f"{s.confidence:.2f} {s.level}", short(s.reason, width)])
    lines = table(["STATUS", "TENANT", "SUGGESTED COMPANY", "CONFIDENCE", "REASON"], rows)
    counts = level_counts(suggestions)
    lines.append("")
    lines.append(f"{len(suggestions)} tenants: {counts['high']} high, {counts['medium']} medium, {counts['low']} low, "
                 f"{counts['none']} without a match, {counts['configured']} already configured")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------ listings


def cmd_profiles_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from shared.services.config_api import PROFILES, users_of

    out = out or sys.stdout
    config = build_services(args).config()
    if args.json:
        out.write(json.dumps([{**p.model_dump(mode="json", by_alias=True), "usedBy": len(users_of(config, PROFILES,
                                                                                                 p.name))}
                              for p in config.billing_profiles], indent=2) + "\n")
        return EXIT_OK
    rows = []
    for profile in config.billing_profiles:
        price = profile.price
        text = {"psa": "PSA price", "custom": f"{price.amount}",
                "markup": f"PSA {'+' if (price.percent or 0) >= 0 else ''}{price.percent}%"}[price.mode]
        rows.append([profile.name, profile.psa, profile.product_id, text, profile.billing,
                     ", ".join(profile.agreement_types) or "any", str(len(users_of(config, PROFILES, profile.name)))])
    out.write("\n".join(table(["NAME", "PSA", "PRODUCT", "PRICE", "BILLING", "AGREEMENT TYPES", "MAPPINGS"], rows))
              + f"\n\n{len(rows)} billing profiles\n")
    return EXIT_OK


def cmd_tenants_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from shared.services.config_api import tenant_summary

    out = out or sys.stdout
    config = build_services(args).config()
    if args.json:
        out.write(json.dumps([tenant_summary(t) for t in config.tenants], indent=2) + "\n")
        return EXIT_OK
    rows = []
    for tenant in config.tenants:
        companies = []
        for company in tenant.companies:
            text = f"{company.psa} {company.company_id}" + (f" {company.name}" if company.name else "")
            if company.user_filter and not company.user_filter.empty:
                parts = company.user_filter.model_dump(by_alias=True, exclude_defaults=True)
                text += " [" + "; ".join(f"{k}={'|'.join(v)}" for k, v in parts.items()) + "]"
            companies.append(text)
        mappings = sum(len(c.licences) for c in tenant.companies)
        rows.append([tenant.tenant_id, tenant.name, "yes" if tenant.enabled else "no",
                     ", ".join(companies) or "-", str(mappings)])
    enabled = sum(1 for t in config.tenants if t.enabled)
    out.write("\n".join(table(["TENANT ID", "NAME", "ENABLED", "COMPANIES", "MAPPINGS"], rows))
              + f"\n\n{len(rows)} tenants ({enabled} enabled)\n")
    return EXIT_OK
