"""Google sign-in for the local Compute API: who a request comes from.

Real Compute Engine accepts an OAuth 2 access token or a service account's self-signed JWT
(https://google.aip.dev/auth/4111) in `Authorization: Bearer`. Clients get those from three
places, and this module answers all three on the same port, so credentials code is exercised
end to end instead of trusted:

- the OAuth 2 token endpoint (`POST /token`, the `token_uri` of an `authorized_user` ADC file):
  a refresh token registered by a test becomes a short-lived access token;
- the metadata server (`GET /computeMetadata/v1/instance/service-accounts/default/token`, with
  `Metadata-Flavor: Google`, reached through `GCE_METADATA_HOST`);
- self-signed JWTs: RS256 over `header.claims`, checked with the public key (modulus and
  exponent) a test registered for the service account's email, with `iat`/`exp` enforced.

Modes: `open` (the default: every request is accepted, with or without a token, as the other
tests expect) and `required` (a request without a valid credential gets Google's 401
UNAUTHENTICATED body), for the whole server or for the projects in `required_projects`, so a
credentials test does not disturb tests running at the same time in other projects. Standard library only: RSA verification is one modular exponentiation.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time

# DER prefix of a PKCS#1 v1.5 DigestInfo for SHA-256 (RFC 8017 section 9.2, note 1).
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def b64url(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class Unauthenticated(Exception):
    pass


class Auth:
    def __init__(self):
        self.reset()

    def reset(self):
        self.mode = "open"
        self.required_projects: set[str] = set()
        self.service_accounts: dict[str, tuple[int, int]] = {}  # email -> (n, e)
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> principal
        self.metadata_principal: str | None = None  # the VM's service account, if any
        self.tokens: dict[str, tuple[str, float]] = {}  # access token -> (principal, expiry)
        self.token_lifetime_s = 3599

    def configure(self, body: dict):
        if "mode" in body:
            if body["mode"] not in ("open", "required"):
                raise ValueError("mode is open or required")
            self.mode = body["mode"]
        self.required_projects.update(body.get("required_projects") or [])
        for email, key in (body.get("service_accounts") or {}).items():
            self.service_accounts[email] = (int(key["n"], 16), int(key.get("e", 65537)))
        self.refresh_tokens.update(body.get("refresh_tokens") or {})
        if "metadata_principal" in body:
            self.metadata_principal = body["metadata_principal"]
        if "token_lifetime_s" in body:
            self.token_lifetime_s = int(body["token_lifetime_s"])

    def issue(self, principal: str) -> dict:
        tok = "ya29.local-" + secrets.token_urlsafe(24)
        self.tokens[tok] = (principal, time.time() + self.token_lifetime_s)
        return {"access_token": tok, "expires_in": self.token_lifetime_s, "token_type": "Bearer"}

    # ---- token sources -----------------------------------------------------------------
    def token_endpoint(self, form: dict) -> tuple[int, dict]:
        """OAuth 2 token endpoint: the refresh_token grant of an authorized user."""
        grant = form.get("grant_type")
        if grant != "refresh_token":
            return 400, {"error": "unsupported_grant_type", "error_description": f"grant_type {grant!r}"}
        principal = self.refresh_tokens.get(form.get("refresh_token", ""))
        if principal is None or not form.get("client_id"):
            return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
        return 200, {**self.issue(principal), "scope": form.get("scope", "https://www.googleapis.com/auth/cloud-platform")}

    def metadata(self, path: str, headers) -> tuple[int, object]:
        """The metadata server's token and identity paths."""
        if headers.get("Metadata-Flavor") != "Google":
            return 403, "Missing Metadata-Flavor:Google header."
        root = "/computeMetadata/v1/"
        p = path[len(root):] if path.startswith(root) else ""
        if self.metadata_principal is None:
            return 404, "Not Found"
        if p in ("instance/service-accounts/default/token",):
            return 200, self.issue(self.metadata_principal)
        if p in ("instance/service-accounts/default/email",):
            return 200, self.metadata_principal
        if p == "universe/universe-domain":
            return 200, "googleapis.com"
        if p in ("", "instance/", "instance"):
            return 200, {"instance": {}}
        return 404, "Not Found"

    # ---- verification ------------------------------------------------------------------
    def principal(self, authorization: str | None, project: str | None = None) -> str | None:
        """Who sent a request (None: no credential). Raises Unauthenticated for a bad one,
        or for none at all in `required` mode."""
        required = self.mode == "required" or project in self.required_projects
        if not authorization:
            if required:
                raise Unauthenticated("Request is missing required authentication credential. Expected OAuth 2 access "
                                      "token, login cookie or other valid authentication credential.")
            return None
        scheme, _, tok = authorization.partition(" ")
        if scheme.lower() != "bearer" or not tok:
            raise Unauthenticated("Request had invalid authentication credentials: not a Bearer token.")
        if tok in self.tokens:
            who, exp = self.tokens[tok]
            if time.time() >= exp:
                raise Unauthenticated("Request had invalid authentication credentials: the access token expired.")
            return who
        if tok.count(".") == 2:
            return self._jwt(tok, required)
        if required:
            raise Unauthenticated("Request had invalid authentication credentials. Expected OAuth 2 access token, "
                                  "login cookie or other valid authentication credential.")
        return "token:" + hashlib.sha256(tok.encode()).hexdigest()[:12]

    def _jwt(self, tok: str, required: bool) -> str:
        h64, c64, s64 = tok.split(".")
        try:
            header, claims, sig = json.loads(b64url(h64)), json.loads(b64url(c64)), b64url(s64)
        except ValueError:
            raise Unauthenticated("Request had invalid authentication credentials: malformed JWT.") from None
        if header.get("alg") != "RS256":
            raise Unauthenticated(f"Request had invalid authentication credentials: JWT alg {header.get('alg')!r}.")
        email = claims.get("iss")
        key = self.service_accounts.get(email)
        if key is None:
            if required:
                raise Unauthenticated(f"Request had invalid authentication credentials: unknown service account {email!r}.")
            return f"unverified:{email}"
        n, e = key
        k = (n.bit_length() + 7) // 8
        em = pow(int.from_bytes(sig, "big"), e, n).to_bytes(k, "big")
        want = SHA256_DIGEST_INFO + hashlib.sha256(f"{h64}.{c64}".encode()).digest()
        if em != b"\x00\x01" + b"\xff" * (k - len(want) - 3) + b"\x00" + want:
            raise Unauthenticated("Request had invalid authentication credentials: the JWT signature does not verify.")
        now = time.time()
        if not (claims.get("iat", 0) - 300 <= now < claims.get("exp", 0)):
            raise Unauthenticated("Request had invalid authentication credentials: the JWT is expired or not yet valid.")
        if claims.get("sub", email) != email:
            raise Unauthenticated("Request had invalid authentication credentials: sub differs from iss.")
        return email
