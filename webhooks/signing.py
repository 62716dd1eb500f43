"""Standard Webhooks signatures (https://www.standardwebhooks.com/): the standard's names, in one place."""

import base64
import hashlib
import hmac
import secrets

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"
SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"


def secret_generate() -> str:
    """Return a new signing secret: `whsec_` and 24 random bytes in base64, as the standard's libraries expect."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def signature(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` for one secret."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def headers(*, secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Return the three headers; every valid secret signs (space-separated), so a rotation breaks no receiver."""
    signatures = " ".join(signature(secret=s, msg_id=msg_id, timestamp=timestamp, body=body) for s in secrets_)
    return {HEADER_ID: msg_id, HEADER_TIMESTAMP: str(timestamp), HEADER_SIGNATURE: signatures}
