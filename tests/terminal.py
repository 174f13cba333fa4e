"""Run a command in a pseudo-terminal of a given size, and read the screen it leaves.

``run_in_terminal`` starts ``python -m django ...`` with a pty as its stdin, stdout
and stderr (what a person's terminal gives it), optionally types into it or sends
SIGINT once the command reaches a pause point (tests/pauses), and returns all the
bytes it wrote. ``Screen`` replays those bytes as a terminal of that width would:
carriage returns, line feeds, erase-to-end-of-line, colours, and wrapping when a
line is longer than the terminal.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path

# The project's root: the children run from there (as tests.test_processes.ROOT).
ROOT = Path(__file__).resolve().parent.parent

# Control sequences: CSI (ESC [ ... letter), and the characters a terminal acts on.
TOKENS = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\r|\n|\x08|[^\x1b\r\n\x08]+")
# A progress frame: drawn from the start of the line, and the rest of it erased.
FRAME = re.compile(r"\r([^\r\n\x1b]*)\x1b\[K")


@dataclass
class Finished:
    output: bytes
    returncode: int
    paused_at: str = ""

    @property
    def text(self) -> str:
        return self.output.decode()

    def frames(self) -> list[str]:
        """Every progress line drawn, in order (the empty erase at the end left out)."""
        return [frame for frame in FRAME.findall(self.text) if frame]

    def screen(self, columns: int = 80) -> Screen:
        return Screen(columns).feed(self.output)


def run_in_terminal(
    *args: str,
    env: dict[str, str],
    columns: int = 80,
    pause_marker: Path | None = None,
    interrupt: bool = False,
    type_after: tuple[bytes, bytes] | None = None,
    timeout: float = 120,
) -> Finished:
    """Run ``python -m django *args`` in a pty ``columns`` wide; return its output.

    With ``pause_marker`` and ``interrupt``, SIGINT is sent once the command has
    written the marker (it is then pausing, see tests/pauses). With ``type_after``,
    the second bytes are typed once the output ends with the first (a prompt).
    """
    pid, fd = pty.fork()
    if pid == 0:  # the child: its terminal is the pty
        try:
            os.chdir(ROOT)
            os.execve(sys.executable, [sys.executable, "-m", "django", *args], env)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    output = b""
    paused_at = ""
    deadline = time.monotonic() + timeout
    typed_at = grown_at = 0.0
    try:
        while True:
            if pause_marker is not None and not paused_at and pause_marker.exists():
                paused_at = pause_marker.read_text()
                if interrupt:
                    os.kill(pid, signal.SIGINT)
            if type_after is not None and (
                output.endswith(type_after[0])
                if not typed_at
                # Ctrl-C typed again while nothing more comes for 5 s: what a
                # terminal discards before the program reads it is typed again.
                else type_after[1] == b"\x03"
                and time.monotonic() - max(typed_at, grown_at) > 5
            ):
                os.write(fd, type_after[1])
                typed_at = time.monotonic()
            assert time.monotonic() < deadline, output.decode(errors="replace")
            ready, _, _ = select.select([fd], [], [], 0.02)
            if not ready:
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            output += data
            grown_at = time.monotonic()
    except BaseException:
        # A child left waiting (at a prompt, say) must not hang the test run.
        os.kill(pid, signal.SIGKILL)
        raise
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return Finished(output, os.waitstatus_to_exitcode(status), paused_at)


@dataclass
class Screen:
    """What a terminal ``columns`` wide shows after some output."""

    columns: int
    lines: list[list[str]] = field(default_factory=lambda: [[]])
    row: int = 0
    column: int = 0
    # Lines the terminal wrapped because the text went past its last column.
    wraps: int = 0
    # SGR (colour) sequences in force when a progress line was drawn.
    coloured_progress: list[str] = field(default_factory=list)
    # Rows that continue the row before them (wrapped there).
    continued: set[int] = field(default_factory=set)
    _pending_wrap: bool = False
    _in_progress: bool = False  # a line drawn from its start, not yet erased
    _colour: str | None = None  # the SGR sequence in force

    def feed(self, data: bytes) -> Screen:
        for token in TOKENS.findall(data):
            if token == b"\r":
                self.column, self._pending_wrap = 0, False
                self._in_progress = True
            elif token == b"\n":
                self._new_line()
                self._in_progress = False
            elif token == b"\x08":
                self.column = max(0, self.column - 1)
            elif token.startswith(b"\x1b["):
                if token.endswith(b"K"):
                    if self._in_progress and self._colour and self.column:
                        self.coloured_progress.append(self._colour)
                    del self.lines[self.row][self.column :]
                    self._in_progress = False
                elif token.endswith(b"m"):
                    reset = token in (b"\x1b[0m", b"\x1b[m")
                    self._colour = None if reset else token.decode()
            else:
                for character in token.decode():
                    self._put(character)
        return self

    def _new_line(self) -> None:
        self.row += 1
        self.column = 0
        self._pending_wrap = False
        if self.row == len(self.lines):
            self.lines.append([])

    def _put(self, character: str) -> None:
        if self._pending_wrap:
            # A terminal wraps when a character comes after the last column.
            self.wraps += 1
            self._new_line()
            self.continued.add(self.row)
        line = self.lines[self.row]
        line.extend(" " * (self.column - len(line)))
        if self.column < len(line):
            line[self.column] = character
        else:
            line.append(character)
        self.column += 1
        if self.column == self.columns:
            self.column -= 1
            self._pending_wrap = True

    def text(self) -> list[str]:
        """The screen's rows, without trailing spaces or the last empty rows."""
        rows = ["".join(line).rstrip() for line in self.lines]
        while rows and not rows[-1]:
            rows.pop()
        return rows

    def lines_written(self) -> list[str]:
        """The lines as written, each wrapped row joined to the one before."""
        lines: list[str] = []
        for number, row in enumerate(self.lines):
            text = "".join(row)
            if number in self.continued and lines:
                lines[-1] += text
            else:
                lines.append(text)
        lines = [line.rstrip() for line in lines]
        while lines and not lines[-1]:
            lines.pop()
        return lines
