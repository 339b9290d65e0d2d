"""Errors a user can cause. The CLI turns them into one line on stderr and exit code 2."""


class UserError(Exception):
    """Bad input: a config key, a missing file, an unknown env, an incompatible checkpoint.

    The message is shown to the user as is, on one line, without a traceback.
    """
