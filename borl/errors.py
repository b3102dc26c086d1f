"""The one exception type that the command line turns into a one-line message and a non-zero exit."""


class BorlError(Exception):
    """A problem with the user's input or files, explained in one line."""


def one_line(error: Exception) -> str:
    """An exception's message on one line; YAML's multi-line parser errors as "line L, column C: what"."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = " ".join(str(error).split())
    return text or type(error).__name__
