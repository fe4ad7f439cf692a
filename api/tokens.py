"""Signed bearer tokens (JWT) for the API and the page session cookie."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import jwt

from domain.db import utcnow
from domain.settings import Settings
from domain.user import User

COOKIE = "dossier_session"


def _password_stamp(user: User) -> str:
    # Changing a password changes this stamp, which ends every session signed before.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:12]


def issue(user: User, settings: Settings) -> str:
    now = utcnow()
    claims = {
        "sub": str(user.id),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=settings.token_ttl_minutes)).timestamp()),
        "pwd": _password_stamp(user),
    }
    return jwt.encode(claims, settings.signing_key(), algorithm="HS256")


def user_id(token: str, settings: Settings) -> tuple[int, str] | None:
    """(user id, password stamp) of a valid token, or None."""
    try:
        claims = jwt.decode(
            token,
            settings.signing_key(),
            algorithms=["HS256"],
            options={"require": ["sub", "exp", "pwd"]},
        )
        return int(claims["sub"]), str(claims["pwd"])
    except (jwt.PyJWTError, ValueError):
        return None


def still_valid(user: User, stamp: str) -> bool:
    return user.active and _password_stamp(user) == stamp
