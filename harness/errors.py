"""Exception types that carry a meaning for the user: a mistake in the input, and a codec failure told in full."""


class UserError(Exception):
    """A mistake in the user's input (config, file, option, data).

    The CLI prints its message as a single line and exits with status 2,
    without a traceback, so the message must name the file, key or value at
    fault and say what to do about it. A message of several lines (a config
    with several mistakes) is one such line per mistake.
    """


class CodecFailure(Exception):
    """A codec's failure already described in full (where it ran and what happened): an error row holds its
    message as it is, where other exceptions get their type name in front."""
