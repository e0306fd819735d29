"""Errors a user can act on: the CLI prints them without a traceback."""


class AupguardError(Exception):
    """Base class: the message says what went wrong and what to do."""


class ConfigError(AupguardError):
    """The configuration file is missing, unreadable or invalid."""


class InputError(AupguardError):
    """A user-supplied file (CSV, JSON, pcap, MRT, mail) is malformed."""
