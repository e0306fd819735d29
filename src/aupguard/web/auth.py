"""Users, roles, passwords, API tokens, session cookies and CSRF tokens.

Roles (``ROLES``): ``read-only`` reads everything except restricted cases;
``analyst`` also works cases and the intake queue; ``legal`` is the restricted
role that additionally sees content.csam cases and records mandatory reports;
``admin`` manages users and tokens and reads metrics. Every route names one
:class:`Perm`; :data:`PERM_ROLES` says which roles hold it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from aupguard.errors import AupguardError, InputError
from aupguard.store import audit
from aupguard.store.types import utcnow
from aupguard.web.models import ROLES, ApiToken, WebUser

TOKEN_PREFIX = "aupg_"
MIN_PASSWORD = 10

# Password hashing: hashlib.scrypt is in the standard library and memory-hard
# (n=2**14, r=8: 16 MiB per guess), so offline guessing is expensive without a
# new dependency; argon2-cffi would be equally good but is not installed.
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**14, 8, 1, 32


class Perm(str, Enum):
    VIEW = "view"          # read cases, incidents, clients, queues, listings
    WORK = "work"          # change cases, work the intake queue
    LEGAL = "legal"        # mandatory reports on restricted cases
    AUDIT = "audit"        # verify the audit chain
    ADMIN = "admin"        # users, tokens
    METRICS = "metrics"    # Prometheus scrape: admin, or any API token


PERM_ROLES: dict[Perm, frozenset[str]] = {
    Perm.VIEW: frozenset(ROLES),
    Perm.WORK: frozenset({"analyst", "legal", "admin"}),
    Perm.LEGAL: frozenset({"legal"}),
    Perm.AUDIT: frozenset({"legal", "admin"}),
    Perm.ADMIN: frozenset({"admin"}),
    Perm.METRICS: frozenset({"admin"}),
}
RESTRICTED_ROLES = frozenset({"legal"})


@dataclass(frozen=True)
class Principal:
    """Who is calling: a console user (session cookie) or an API token."""

    name: str
    role: str
    via: str              # "session" | "token"
    csrf: str = ""        # the session's CSRF token (console forms)

    @property
    def actor(self) -> str:
        """The name written to the audit log."""
        return f"web:{self.name}" if self.via == "session" else f"token:{self.name}"

    @property
    def sees_restricted(self) -> bool:
        return self.role in RESTRICTED_ROLES

    def holds(self, perm: Perm) -> bool:
        if perm is Perm.METRICS and self.via == "token":
            return True
        return self.role in PERM_ROLES[perm]


# --- passwords ---------------------------------------------------------------

def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            dklen=SCRYPT_LEN)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r),
                             p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


# Compared against when the user does not exist, so a login takes as long
# whether or not the name is known (no user enumeration by timing).
_DUMMY_HASH = hash_password(secrets.token_hex(8))


# --- users -------------------------------------------------------------------

def _check_role(role: str) -> str:
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}; use one of: {', '.join(ROLES)}")
    return role


def add_user(session: Session, name: str, role: str, password: str, actor: str = "cli") -> WebUser:
    name = name.strip()
    if not name or len(name) > 100 or any(c.isspace() for c in name):
        raise InputError("a user name is 1-100 characters without spaces")
    _check_role(role)
    if len(password) < MIN_PASSWORD:
        raise InputError(f"the password must have at least {MIN_PASSWORD} characters")
    if session.execute(select(WebUser).where(WebUser.name == name)).scalar_one_or_none():
        raise AupguardError(f"user {name!r} already exists (use `aupguard users passwd` to reset)")
    user = WebUser(name=name, role=role, password_hash=hash_password(password), disabled=False,
                   session_epoch=0, created_at=utcnow())
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.add", "web_user", name, after={"role": role})
    return user


def get_user(session: Session, name: str) -> WebUser | None:
    return session.execute(select(WebUser).where(WebUser.name == name)).scalar_one_or_none()


def list_users(session: Session) -> list[WebUser]:
    return list(session.execute(select(WebUser).order_by(WebUser.name)).scalars())


def set_password(session: Session, name: str, password: str, actor: str = "cli") -> None:
    user = _need_user(session, name)
    if len(password) < MIN_PASSWORD:
        raise InputError(f"the password must have at least {MIN_PASSWORD} characters")
    user.password_hash = hash_password(password)
    user.session_epoch += 1
    audit.record(session, actor, "user.password", "web_user", name)


def set_disabled(session: Session, name: str, disabled: bool, actor: str = "cli") -> None:
    user = _need_user(session, name)
    before = user.disabled
    user.disabled = disabled
    user.session_epoch += 1
    audit.record(session, actor, "user.disable" if disabled else "user.enable", "web_user", name,
                 before={"disabled": before}, after={"disabled": disabled})


def _need_user(session: Session, name: str) -> WebUser:
    user = get_user(session, name)
    if user is None:
        raise AupguardError(f"no user {name!r} (see `aupguard users list`)")
    return user


def authenticate(session: Session, name: str, password: str) -> WebUser | None:
    """The enabled user with this name and password, else None (same time either way)."""
    user = get_user(session, name)
    ok = check_password(password, user.password_hash if user else _DUMMY_HASH)
    if not user or not ok or user.disabled:
        return None
    user.last_login_at = utcnow()
    return user


# --- API tokens --------------------------------------------------------------

def _token_digest(token: str) -> str:
    # Tokens are 256 random bits, so a fast hash is enough: there is nothing to
    # guess offline, unlike a human-chosen password.
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, name: str, role: str, actor: str = "cli") -> str:
    """Create a token and return it; only its hash is stored, so show it now."""
    _check_role(role)
    name = name.strip()
    if not name or len(name) > 100:
        raise InputError("a token name is 1-100 characters")
    if session.execute(select(ApiToken).where(ApiToken.name == name)).scalar_one_or_none():
        raise AupguardError(f"token {name!r} already exists; revoke it or pick another name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, role=role, token_hash=_token_digest(token),
                         prefix=token[:12], created_by=actor, created_at=utcnow(), revoked=False))
    session.flush()
    audit.record(session, actor, "token.create", "api_token", name, after={"role": role})
    return token


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.execute(select(ApiToken).order_by(ApiToken.name)).scalars())


def revoke_token(session: Session, name: str, actor: str = "cli") -> None:
    row = session.execute(select(ApiToken).where(ApiToken.name == name)).scalar_one_or_none()
    if row is None:
        raise AupguardError(f"no token {name!r} (see `aupguard tokens list`)")
    row.revoked = True
    audit.record(session, actor, "token.revoke", "api_token", name)


def principal_for_token(session: Session, token: str) -> Principal | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.execute(
        select(ApiToken).where(ApiToken.token_hash == _token_digest(token))
    ).scalar_one_or_none()
    if row is None or row.revoked:
        return None
    now = utcnow()
    # Note use at most once a minute: a busy script must not turn every read into a write.
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        row.last_used_at = now
    return Principal(name=row.name, role=row.role, via="token")


# --- session cookies and CSRF ------------------------------------------------

def load_secret(settings) -> str:
    """The configured key, else one generated once and kept beside the data."""
    if settings.web.secret_key:
        return settings.web.secret_key
    path = Path(settings.data_dir) / "web-secret.key"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(key, encoding="utf-8")
    return key


class Signer:
    """Signed, timestamped cookie payloads (itsdangerous)."""

    def __init__(self, secret: str, max_age_s: int):
        self._session = URLSafeTimedSerializer(secret, salt="aupguard.session")
        self._login = URLSafeTimedSerializer(secret, salt="aupguard.login-csrf")
        self._flash = URLSafeTimedSerializer(secret, salt="aupguard.flash")
        self.max_age_s = max_age_s

    def session_cookie(self, user: WebUser) -> str:
        return self._session.dumps({"u": user.name, "e": user.session_epoch,
                                    "c": secrets.token_urlsafe(24)})

    def read_session(self, value: str) -> dict | None:
        try:
            data = self._session.loads(value, max_age=self.max_age_s)
        except BadSignature:
            return None
        return data if isinstance(data, dict) and {"u", "e", "c"} <= data.keys() else None

    def login_csrf(self) -> tuple[str, str]:
        """(cookie value, form value) for the login form: a double-submit pair."""
        nonce = secrets.token_urlsafe(24)
        return self._login.dumps(nonce), nonce

    def check_login_csrf(self, cookie: str | None, form_value: str) -> bool:
        if not cookie or not form_value:
            return False
        try:
            nonce = self._login.loads(cookie, max_age=3600)
        except BadSignature:
            return False
        return isinstance(nonce, str) and hmac.compare_digest(nonce, form_value)

    def flash(self, message: str, kind: str) -> str:
        return self._flash.dumps([kind, message[:500]])

    def read_flash(self, value: str | None) -> tuple[str, str] | None:
        if not value:
            return None
        try:
            kind, message = self._flash.loads(value, max_age=120)
        except (BadSignature, ValueError, TypeError):
            return None
        return str(kind), str(message)


def principal_for_session(session: Session, signer: Signer, cookie: str | None) -> Principal | None:
    if not cookie:
        return None
    data = signer.read_session(cookie)
    if data is None:
        return None
    user = get_user(session, str(data["u"]))
    if user is None or user.disabled or user.session_epoch != data["e"]:
        return None
    return Principal(name=user.name, role=user.role, via="session", csrf=str(data["c"]))


def csrf_ok(principal: Principal, submitted: str | None) -> bool:
    return bool(submitted) and principal.via == "session" and hmac.compare_digest(
        principal.csrf, submitted or "")
