"""Every option and argument of the command line says what it is for, and the README lists every
verb."""

from __future__ import annotations

import argparse
from pathlib import Path

from local_runner.cli import parser

README = Path(__file__).resolve().parents[2] / "README.md"


Verb = tuple[tuple[str, ...], argparse.ArgumentParser]


def _verbs(node: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[Verb]:
    found = [(path, node)]
    for action in node._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _verbs(child, (*path, name))
    return found


def test_every_option_and_argument_has_help() -> None:
    missing = []
    for path, node in _verbs(parser()):
        for action in node._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"seatsync {' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_every_verb_has_help_and_is_in_the_readme() -> None:
    lines = [line.strip() for line in README.read_text(encoding="utf-8").splitlines()
             if line.strip().startswith("seatsync ")]
    root = parser()
    choices = next(a for a in root._actions if isinstance(a, argparse._SubParsersAction))
    helps = {action.dest: action.help for action in choices._choices_actions}
    missing = []
    for path, _ in _verbs(root):
        if not path:
            continue
        verb = path[0]
        if len(path) == 1:
            if not helps.get(verb):
                missing.append(f"{verb}: no help")
            if not any(line.startswith(f"seatsync {verb}") for line in lines):
                missing.append(f"seatsync {verb}: not in the README")
        elif not any(line.startswith(f"seatsync {verb}") and path[1] in line for line in lines):
            missing.append(f"seatsync {' '.join(path)}: not in the README")
    assert missing == []
