"""The one exception type that user-facing scripts turn into a single line on stderr."""


class W2VError(ValueError):
  """Bad input or settings. The message says what to change; scripts print it without a traceback."""
