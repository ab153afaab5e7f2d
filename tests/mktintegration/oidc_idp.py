"""A tiny OpenID Connect provider on 127.0.0.1 for SSO tests: discovery document, JWKS, token
endpoint (client_secret_basic, PKCE S256) signing id_tokens with a test RSA key, userinfo.

The test plays the browser: it reads the authorization request our app redirects to, picks
who signs in with ``authorize()``, and brings the code back to our callback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CLIENT_ID = "mkt-test-client"
CLIENT_SECRET = "idp-client-secret-LEAK-CHECK-77"
KID = "test-key-1"


class FakeOidcProvider:
    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.codes: dict[str, dict] = {}
        self.access_tokens: dict[str, dict] = {}
        self.token_requests: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    # --- what the test does as the user at the IdP -------------------------------------------

    def authorize(self, params: dict[str, str], *, sub: str, claims: dict) -> str:
        """Accept the authorization request for this user; returns the code."""
        assert params["client_id"] == CLIENT_ID and params["response_type"] == "code"
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "sub": sub,
            "claims": claims,
            "nonce": params["nonce"],
            "challenge": params.get("code_challenge"),
            "redirect_uri": params["redirect_uri"],
        }
        return code

    # --- the endpoints ------------------------------------------------------------------------

    def _discovery(self) -> dict:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "userinfo_endpoint": f"{self.url}/userinfo",
            "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
        }

    def _jwks(self) -> dict:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": KID, "alg": "RS256", "use": "sig"}]}

    def _token(self, headers, form: dict[str, str]) -> tuple[int, dict]:
        self.token_requests.append(form)
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if headers.get("Authorization") != f"Basic {expected}":
            return 401, {"error": "invalid_client"}
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant"}
        if grant["challenge"]:
            verifier = form.get("code_verifier", "").encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
            if digest.decode() != grant["challenge"]:
                return 400, {"error": "invalid_grant", "error_description": "PKCE"}
        now = int(time.time())
        id_token = jwt.encode(
            {
                "iss": self.url,
                "sub": grant["sub"],
                "aud": CLIENT_ID,
                "iat": now,
                "exp": now + 300,
                "nonce": grant["nonce"],
                **grant["claims"],
            },
            self.key,
            algorithm="RS256",
            headers={"kid": KID},
        )
        access_token = "idp-access-" + secrets.token_urlsafe(16)
        self.access_tokens[access_token] = {"sub": grant["sub"], **grant["claims"]}
        return 200, {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
        }

    def _userinfo(self, headers) -> tuple[int, dict]:
        token = (headers.get("Authorization") or "").removeprefix("Bearer ")
        info = self.access_tokens.get(token)
        return (200, info) if info else (401, {"error": "invalid_token"})

    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    self._send(200, provider._discovery())
                elif self.path == "/jwks":
                    self._send(200, provider._jwks())
                elif self.path == "/userinfo":
                    self._send(*provider._userinfo(self.headers))
                else:
                    self._send(404, {"error": "not_found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if self.path == "/token":
                    self._send(*provider._token(self.headers, form))
                else:
                    self._send(404, {"error": "not_found"})

        return Handler
