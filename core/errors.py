"""Errors raised by ``activeserve.core``.

Every error the method raises derives from one base, so that a caller can catch the
whole family at once, and the server can map it to a gRPC status in one place::

    ValueError
    └── CoreError              anything the method refuses
        ├── ConfigError        a configuration key or value is unusable
        └── InputError         an array or argument handed to a core function is
                               unusable (shape, dtype, range)

``CoreError`` derives from ``ValueError`` because every one of these is a bad value
given by the caller, never a failure of the machine.
"""

from __future__ import annotations

__all__ = ["ConfigError", "CoreError", "InputError"]


class CoreError(ValueError):
    """Base of every error raised by ``activeserve.core``."""


class ConfigError(CoreError):
    """A configuration key or value is unusable.

    The message names the file (when there is one), the key, the value given and the
    value expected. When the error comes from one field of a value class, ``owner``
    (the class name), ``field``, ``value`` and ``expected`` say which, so that the
    config loader can restate it in terms of the TOML key the user wrote.
    """

    def __init__(
        self,
        message: str,
        *,
        owner: str | None = None,
        field: str | None = None,
        value: object = None,
        expected: str | None = None,
    ) -> None:
        super().__init__(message)
        self.owner = owner
        self.field = field
        self.value = value
        self.expected = expected

    @classmethod
    def invalid(
        cls, owner: str, field: str, value: object, expected: str
    ) -> ConfigError:
        """An error for ``owner.field = value`` where ``expected`` says what fits."""
        return cls(
            f"{owner}.{field} = {value!r} is invalid; expected {expected}",
            owner=owner,
            field=field,
            value=value,
            expected=expected,
        )


class InputError(CoreError):
    """An array or argument handed to a core function is unusable.

    Raised for a wrong shape, dtype or range: a caller's mistake, reported with the
    value received and the one expected.
    """
