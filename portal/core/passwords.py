"""Password hashing, chosen on purpose: Argon2id with OWASP's parameters.

OWASP's Password Storage Cheat Sheet puts Argon2id first, at a minimum of 19 MiB of memory,
2 iterations and 1 degree of parallelism; that is what ``argon2id`` here means. One check
takes ~30 ms on a 2-core machine (bench/README), against ~150 ms for Werkzeug's scrypt
default (N=2^15, which is also a quarter of OWASP's scrypt minimum of N=2^17): a sign-in
that does not feel slow, from a hash that costs an attacker 19 MiB a guess.

``PASSWORD_HASH_METHOD`` names the method for new hashes: ``argon2id`` (the default), or
any Werkzeug method (``scrypt``, ``pbkdf2:sha256:600000``; the tests use a cheap pbkdf2 to
stay quick). Hashes of every method verify; one that is not of the configured method and
parameters is hashed again at its owner's next sign-in.
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

ARGON2ID = "argon2id"
#: OWASP Password Storage Cheat Sheet: m=19 MiB, t=2, p=1
_ARGON2 = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def method() -> str:
    """The configured method for new hashes."""
    return str(current_app.config.get("PASSWORD_HASH_METHOD") or ARGON2ID)


def hash_password(password: str, how: str | None = None) -> str:
    """A new hash of ``password`` by the configured method (or ``how``)."""
    how = how or method()
    if how == ARGON2ID:
        return _ARGON2.hash(password)
    return generate_password_hash(password, method=how)


def verify(stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored``, whatever method made it."""
    if not stored:
        return False
    if stored.startswith("$argon2"):
        try:
            return _ARGON2.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
    return check_password_hash(stored, password)


def needs_rehash(stored: str) -> bool:
    """True when ``stored`` is not of the configured method and parameters."""
    how = method()
    if how == ARGON2ID:
        return not stored.startswith("$argon2id$") or _ARGON2.check_needs_rehash(stored)
    return stored.split("$", 1)[0] != _werkzeug_head(how)


@functools.cache
def _werkzeug_head(how: str) -> str:
    """What Werkzeug writes before the salt for ``how``, its parameters spelled out
    ("pbkdf2:sha256" → "pbkdf2:sha256:1000000"): a hash made with other parameters
    (fewer iterations) is made anew too."""
    return generate_password_hash("", method=how).split("$", 1)[0]


def check_method(how: str) -> None:
    """``ValueError`` unless new hashes can be made by ``how`` (checked at start-up, not
    at the first sign-in or invitation)."""
    if how != ARGON2ID:
        try:
            _werkzeug_head(how)
        except (ValueError, TypeError) as error:
            raise ValueError(f"PASSWORD_HASH_METHOD {how!r} is not a method this portal "
                             f"knows ({ARGON2ID}, scrypt, pbkdf2:sha256): {error}") from None
