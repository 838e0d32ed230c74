"""Who made a run, a sweep or a drawing: display names as the store records them (never part of a config's key).

On a shared server each browser session signs in with a display name; elsewhere (the CLI, a local server) the
name is the machine's user. A name is one line of at most NAME_MAX printable characters; it is shown as text.
"""

from __future__ import annotations

import getpass
import unicodedata

NAME_MAX = 40


class BadName(ValueError):
    """Why a display name cannot be used, as one sentence."""


def machine_user() -> str:
    """The name of whoever runs this process on this machine ("local" where the system cannot say)."""
    try:
        name = getpass.getuser()
    except Exception:  # no user name in the environment nor the password database
        return "local"
    return clean_name(name) if name and usable(name) else "local"


def usable(text: str) -> bool:
    try:
        clean_name(text)
    except BadName:
        return False
    return True


def clean_name(text: object) -> str:
    """`text` as a display name: surrounding spaces removed, inner runs of space made one; BadName saying
    what is wrong when it is empty, too long, or holds control characters."""
    if not isinstance(text, str):
        raise BadName("A name is text.")
    name = " ".join(text.split())
    if not name:
        raise BadName("Type a name, so that others see who launched what.")
    if len(name) > NAME_MAX:
        raise BadName(f"A name is at most {NAME_MAX} characters; this one has {len(name)}.")
    if any(unicodedata.category(c)[0] == "C" for c in text):  # the text as given: a trailing newline or a tab too
        raise BadName("A name cannot hold control or invisible formatting characters (a line break, a tab).")
    return name


def stored_name(value: object) -> str | None:
    """A name read back from the store: the name, or None when there is none or it is not one nnapp writes."""
    return value if isinstance(value, str) and usable(value) and value == clean_name(value) else None
