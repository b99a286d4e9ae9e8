"""Child processes a test stops as a person does: with Ctrl-C (SIGINT)."""

from __future__ import annotations

import signal


def sigint_as_in_a_terminal() -> None:
    """``preexec_fn`` of a child a test stops with SIGINT. A shell without job control (a CI
    step, a script) starts a command it runs in the background with SIGINT ignored, and a child
    inherits an ignored signal: Python then installs no KeyboardInterrupt handler, and the child
    never hears the test's Ctrl-C. The child gets SIGINT's default, as a terminal's foreground
    command has it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
