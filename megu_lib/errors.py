"""The library's one exception class.

Every check on user input raises :class:`MeguError` (a ``ValueError``) with a
one-line message that says what is wrong and how to fix it, *before* any work
starts and before anything is written to a cache or a results directory.
"""


class MeguError(ValueError):
    """Bad input to megu_lib: the message says what is wrong and how to fix it."""

    def __init__(self, message: str):
        # one line, always: notebooks and the CLI show it as it is
        super().__init__(" ".join(str(message).split()))


def check(condition: bool, message: str) -> None:
    """Raise :class:`MeguError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise MeguError(message)
