"""The one exception type that the command line turns into a one-line message and a non-zero exit."""


class BorlError(Exception):
    """A problem with the user's input or files, explained in one line."""
