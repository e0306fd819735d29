"""Keys of the cases stage: the HMAC secret (reply addresses, client links,
HMAC export signatures) and the Ed25519 export signing key.

Unconfigured, each is generated once into the data directory (mode 0600), so a
fresh install is safe without anyone inventing a password.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

REPLY_MAC_LEN = 10  # hex chars: 40 bits, enough against guessing a reply address


def _keyfile(path: Path, make: callable) -> bytes:
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = make()
    # O_EXCL: two processes starting at once agree on the first key written.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return data


def secret(settings) -> bytes:
    if settings.cases.secret_key:
        return settings.cases.secret_key.encode()
    return _keyfile(Path(settings.data_dir) / "keys" / "cases.secret",
                    lambda: secrets.token_hex(32).encode())


def reply_mac(settings, case_id: int) -> str:
    return hmac.new(secret(settings), f"case-{case_id}".encode(), hashlib.sha256).hexdigest()[
        :REPLY_MAC_LEN]


def reply_address(settings, case_id: int) -> str:
    cfg = settings.cases
    return f"{cfg.reply_local_part}+case-{case_id}-{reply_mac(settings, case_id)}@{cfg.reply_domain}"


def message_id(settings, case_id: int, serial: int) -> str:
    return f"<case-{case_id}-{reply_mac(settings, case_id)}.{serial}@{settings.cases.reply_domain}>"


_TOKEN = re.compile(r"case-(\d{1,12})-([0-9a-f]{%d})" % REPLY_MAC_LEN)


def find_case_tokens(settings, text: str) -> list[int]:
    """Case ids whose valid reply token appears in `text` (addresses, Message-ID references)."""
    found = []
    for match in _TOKEN.finditer(text.lower()):
        case_id = int(match.group(1))
        if hmac.compare_digest(match.group(2), reply_mac(settings, case_id)) and case_id not in found:
            found.append(case_id)
    return found


def hmac_sign(settings, data: bytes) -> str:
    return hmac.new(secret(settings), data, hashlib.sha256).hexdigest()


def ed25519_available() -> bool:
    try:
        import cryptography.hazmat.primitives.asymmetric.ed25519  # noqa: F401
    except ImportError:
        return False
    return True


def ed25519_private_key(settings):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    def make() -> bytes:
        return Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())

    pem = _keyfile(Path(settings.data_dir) / "keys" / "export-ed25519.pem", make)
    return serialization.load_pem_private_key(pem, password=None)
