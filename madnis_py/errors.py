"""Error types that the CLI turns into one clear line and exit code 2 (bad input)."""
from __future__ import annotations

import difflib
from typing import Iterable


class InputError(ValueError):
    """Bad user input: a card, process, cut or option the program cannot honour."""


class CardError(InputError):
    """A run card that cannot be read or validated."""


class PhysicsError(InputError):
    """Input that is well-formed but physically impossible (below threshold, cuts remove everything)."""


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""
