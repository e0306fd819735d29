"""Passwords, tokens, cookies: the pieces under the role checks."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select

from aupguard.errors import AupguardError, InputError
from aupguard.web import auth
from aupguard.web.models import ApiToken, WebUser


def test_scrypt_hashes_are_salted_and_verify():
    first, second = auth.hash_password("a long passphrase"), auth.hash_password("a long passphrase")
    assert first != second and first.startswith("scrypt$16384$8$1$")
    assert auth.check_password("a long passphrase", first)
    assert not auth.check_password("a long passphrasE", first)


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=string.printable + "$é", max_size=120))
def test_check_password_never_crashes_on_a_corrupt_stored_hash(stored):
    assert auth.check_password("whatever", stored) is False


def test_users_validate_names_roles_and_password_length(web_store):
    with web_store.session() as session:
        with pytest.raises(InputError, match="unknown role"):
            auth.add_user(session, "bob", "root", "long enough password")
        with pytest.raises(InputError, match="at least 10"):
            auth.add_user(session, "bob", "analyst", "short")
        with pytest.raises(InputError, match="without spaces"):
            auth.add_user(session, "bob smith", "analyst", "long enough password")
        with pytest.raises(AupguardError, match="already exists"):
            auth.add_user(session, "analyst1", "analyst", "long enough password")
        stored = session.execute(select(WebUser.password_hash).where(WebUser.name == "analyst1"))
        assert "correct horse" not in stored.scalar_one()


def test_tokens_are_stored_hashed_and_revocable(web_store, client, world):
    token = world.tokens["analyst"]
    with web_store.session() as session:
        rows = session.execute(select(ApiToken)).scalars().all()
        assert all(token not in (r.token_hash, r.prefix) for r in rows)
        assert any(r.prefix == token[:12] for r in rows)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/me", headers=headers).json()["name"] == "tok-analyst"
    with web_store.session() as session:
        auth.revoke_token(session, "tok-analyst")
        used = session.execute(select(ApiToken.last_used_at).where(ApiToken.name == "tok-analyst"))
        assert used.scalar_one() is not None
    assert client.get("/api/me", headers=headers).status_code == 401


def test_every_account_change_is_audited(web_store):
    from aupguard.store.audit import AuditEntry, verify

    with web_store.session() as session:
        auth.add_user(session, "carol", "legal", "long enough password", actor="cli")
        auth.set_password(session, "carol", "another long password", actor="cli")
        auth.set_disabled(session, "carol", True, actor="cli")
        auth.create_token(session, "ci", "read-only", actor="cli")
        auth.revoke_token(session, "ci", actor="cli")
        actions = [e.action for e in session.execute(
            select(AuditEntry).where(AuditEntry.entity.in_(["web_user", "api_token"]),
                                     AuditEntry.entity_id.in_(["carol", "ci"]))
            .order_by(AuditEntry.id)).scalars()]
        assert actions == ["user.add", "user.password", "user.disable", "token.create",
                           "token.revoke"]
        assert verify(session).ok


def test_session_cookie_tampering_and_expiry(web_store, web_settings):
    from itsdangerous import URLSafeTimedSerializer

    signer = auth.Signer(auth.load_secret(web_settings), max_age_s=60)
    with web_store.session() as session:
        user = auth.get_user(session, "legal1")
        cookie = signer.session_cookie(user)
        who = auth.principal_for_session(session, signer, cookie)
        assert who is not None and (who.name, who.role, who.via) == ("legal1", "legal", "session")
        # Same payload signed with another key: refused.
        forged = URLSafeTimedSerializer("not-the-key", salt="aupguard.session").dumps(
            {"u": "legal1", "e": 0, "c": "x"})
        assert auth.principal_for_session(session, signer, forged) is None
        assert auth.principal_for_session(session, signer, cookie[:-2] + "xx") is None
        expired = auth.Signer(auth.load_secret(web_settings), max_age_s=-1)
        assert auth.principal_for_session(session, expired, cookie) is None


def test_generated_secret_is_private_and_stable(web_settings):
    key = auth.load_secret(web_settings)
    path = web_settings.data_dir / "web-secret.key"
    assert path.stat().st_mode & 0o077 == 0
    assert auth.load_secret(web_settings) == key and len(key) >= 48


def test_csrf_compare():
    who = auth.Principal("a", "analyst", "session", csrf="abc")
    assert auth.csrf_ok(who, "abc") and not auth.csrf_ok(who, "abd") and not auth.csrf_ok(who, None)
    assert not auth.csrf_ok(auth.Principal("a", "analyst", "token"), "")
