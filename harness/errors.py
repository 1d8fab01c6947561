"""The one exception type that means "the user asked for something wrong"."""


class UserError(Exception):
    """A mistake in the user's input (config, file, option, data).

    The CLI prints its message as a single line and exits with status 2,
    without a traceback, so the message must name the file, key or value at
    fault and say what to do about it.
    """
