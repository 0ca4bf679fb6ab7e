#!/usr/bin/env python3
"""Join tokens verified by a verifier that is not the project's code (PyJWT).

Starts its own game-service processes on free ports (in-memory store, keys made
with `openssl genpkey -algorithm ed25519` in a temporary directory) and checks
docs/CONTRACT.md "Verifying a join token offline" and "Keys and rotation" from
the outside, using only what a game server has: the JWK set served at
`/v1/join-tokens/jwks.json`.

    scripts/join_token_interop.py [BIN_DIR]

BIN_DIR holds game-service and xtask (default: $CARGO_TARGET_DIR/debug, or
target/debug of the workspace). Needs Python 3.11, PyJWT[crypto] and openssl.
Prints one line per check and exits non-zero when any check fails.

Instances:
  A  signs with key1 (JOIN_TOKEN_KEY_FILE)
  B  signs with key2 and still accepts key1 (JOIN_TOKEN_VERIFY_KEY_FILES = key1's public PEM)
  C  an ephemeral key, JOIN_TOKEN_TTL_SECS=1 (expiry, and a kid A does not know)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import jwt
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_private_key,
    )
    from jwt import PyJWKClient, PyJWKSet
    from jwt.exceptions import (
        ExpiredSignatureError,
        InvalidAudienceError,
        InvalidIssuerError,
        InvalidSignatureError,
        PyJWKClientError,
    )
except ImportError as missing:
    sys.exit(f"error: {missing}; install PyJWT[crypto] (scripts/qa.sh puts it in .venv)")

ISSUER = "game-platform"
AUDIENCE = "game-server"
DEFAULT_TTL_SECS = 900
REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "exp"]
HTTP_TIMEOUT = 10
# Environment that would change what the instances do: never inherited.
SCRUBBED_ENV = (
    "REDIS_URL",
    "REDIS_CLUSTER",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "JWT_ALGORITHM",
    "JWT_PUBLIC_KEY_FILE",
    "JOIN_TOKEN_KEY_FILE",
    "JOIN_TOKEN_VERIFY_KEY_FILES",
    "JOIN_TOKEN_TTL_SECS",
    "IM_URL",
)


class CheckFailed(Exception):
    pass


def ensure(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def expect_raises(expected: type[BaseException], action: Callable[[], Any]) -> BaseException:
    """Runs `action`; passes only if it raises `expected` (or a subclass)."""
    try:
        result = action()
    except expected as error:
        return error
    except Exception as error:  # noqa: BLE001 - reported as the wrong failure
        raise CheckFailed(
            f"expected {expected.__name__}, got {type(error).__name__}: {error}"
        ) from error
    raise CheckFailed(f"expected {expected.__name__}, but it passed: {result!r}")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def thumbprint(x: str) -> str:
    """RFC 7638 thumbprint of an Ed25519 OKP key: SHA-256 of its required
    members in lexicographic order, no whitespace, base64url without padding."""
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True
    )
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def public_x(private_pem: Path) -> str:
    """The JWK `x` (raw 32-byte public key, base64url) of a PKCS#8 PEM private key."""
    key = load_pem_private_key(private_pem.read_bytes(), password=None)
    return b64url(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def die_with_parent() -> None:
    """In the child, before exec: on Linux, SIGTERM it when this script dies,
    even by SIGKILL (when the `finally` that stops it cannot run)."""
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(
    method: str, url: str, token: str | None = None, body: Any = None
) -> tuple[int, dict[str, str], Any]:
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            raw, status, headers = response.read(), response.status, response.headers
    except urllib.error.HTTPError as error:
        raw, status, headers = error.read(), error.code, error.headers
    text = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(text) if text else None
    except json.JSONDecodeError:
        parsed = text
    return status, {k.lower(): v for k, v in headers.items()}, parsed


class Instance:
    """One game-service process on a free port."""

    def __init__(self, name: str, bin_dir: Path, workdir: Path, secret: str, **env: str):
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.jwks_url = f"{self.base}/v1/join-tokens/jwks.json"
        self.log_path = workdir / f"{name}.log"
        child_env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        child_env.update(
            BIND_ADDR=f"127.0.0.1:{self.port}",
            JWT_SECRET=secret,
            RUST_LOG="warn",
            # Nothing listens there: connect answers at once with a degraded solo
            # session (which has a join token like any other).
            IM_URL=f"http://127.0.0.1:{free_port()}",
            IM_TIMEOUT_MS="300",
        )
        child_env.update(env)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [str(bin_dir / "game-service")],
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )

    def wait_healthy(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"game-service {self.name} exited with {self.process.returncode}:\n"
                    + self.log_tail()
                )
            try:
                status, _, _ = http("GET", f"{self.base}/healthz")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"game-service {self.name} not healthy in time:\n" + self.log_tail())

    def log_tail(self, lines: int = 20) -> str:
        self._log.flush()
        text = self.log_path.read_text("utf-8", "replace").splitlines()
        return "\n".join(f"    [{self.name}] {line}" for line in text[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()

    def jwks(self) -> dict[str, Any]:
        status, _, body = http("GET", self.jwks_url)
        ensure(status == 200, f"{self.name}: GET jwks.json answered {status}: {body}")
        return body

    def connect(self, player_token: str) -> dict[str, Any]:
        status, _, body = http("POST", f"{self.base}/v1/connect", token=player_token)
        ensure(status == 200, f"{self.name}: POST /v1/connect answered {status}: {body}")
        session = body.get("session") or {}
        ensure(
            session.get("kind") == "solo" and session.get("state") == "active",
            f"{self.name}: expected an active solo session, got {body}",
        )
        ensure(bool(session.get("join_token")), f"{self.name}: no join_token in {session}")
        return session

    def verify_online(self, service_token: str, token: str) -> dict[str, Any]:
        status, _, body = http(
            "POST", f"{self.base}/v1/join-tokens/verify", token=service_token, body={"token": token}
        )
        ensure(status == 200, f"{self.name}: POST /v1/join-tokens/verify answered {status}: {body}")
        return body


def mint(xtask: Path, secret: str, user: str, *extra: str) -> str:
    result = subprocess.run(
        [str(xtask), "token", user, *extra],
        env={**os.environ, "JWT_SECRET": secret},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout.strip()


def decode(token: str, key: Any, audience: str = AUDIENCE, issuer: str = ISSUER, **options: Any):
    """PyJWT's verification, as a game server following docs/CONTRACT.md would do it
    (no leeway, so that expiry is exact)."""
    return jwt.decode(
        token,
        key,
        algorithms=["EdDSA"],
        audience=audience,
        issuer=issuer,
        leeway=0,
        options={"require": REQUIRED_CLAIMS, **options},
    )


def verify_with_client(token: str, jwks_url: str, **kwargs: Any) -> dict[str, Any]:
    """Looks the token's kid up in the set served at `jwks_url` (fetching it again
    on a miss, as the contract asks) and verifies with that key."""
    client = PyJWKClient(jwks_url, cache_jwk_set=True, cooldown_duration=0)
    signing_key = client.get_signing_key_from_jwt(token)
    return decode(token, signing_key.key, **kwargs)


def tamper_sub(token: str, sub: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(b64url_decode(payload))
    claims["sub"] = sub
    forged = b64url(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
    return f"{header}.{forged}.{signature}"


def check_jwks_document(jwks: dict[str, Any], expected_x: list[str | None]) -> list[str]:
    """The set has exactly the expected keys, in order, each a usable Ed25519
    signing key whose kid is its RFC 7638 thumbprint. `None` in `expected_x`: a
    key whose `x` the script cannot know (an ephemeral one). Returns the kids."""
    keys = jwks.get("keys")
    ensure(isinstance(keys, list), f"no `keys` list: {jwks}")
    ensure(len(keys) == len(expected_x), f"expected {len(expected_x)} keys, got {len(keys)}: {keys}")
    for i, (key, x) in enumerate(zip(keys, expected_x, strict=True)):
        for member, value in (("kty", "OKP"), ("crv", "Ed25519"), ("alg", "EdDSA"), ("use", "sig")):
            ensure(key.get(member) == value, f"key {i}: {member} is {key.get(member)!r}, not {value!r}")
        if x is not None:
            ensure(key.get("x") == x, f"key {i}: x is {key.get('x')!r}, the key file's is {x!r}")
        ensure(
            key.get("kid") == thumbprint(key["x"]),
            f"key {i}: kid {key.get('kid')!r} != RFC 7638 thumbprint {thumbprint(key['x'])!r}",
        )
        ensure("d" not in key, f"key {i} publishes its private part")
    usable = PyJWKSet.from_dict(jwks)
    ensure(
        len(usable.keys) == len(keys),
        f"PyJWT could use only {len(usable.keys)} of the {len(keys)} keys",
    )
    return [key["kid"] for key in keys]


def check_claims(claims: dict[str, Any], sub: str, session: dict[str, Any], ttl: int) -> None:
    ensure(claims["sub"] == sub, f"sub {claims['sub']!r} != player {sub!r}")
    ensure(claims.get("sid") == session["id"], f"sid {claims.get('sid')!r} != session {session['id']!r}")
    ensure(claims["iss"] == ISSUER and claims["aud"] == AUDIENCE, f"iss/aud: {claims}")
    ensure(claims.get("kind") == session["kind"], f"kind {claims.get('kind')!r} != {session['kind']!r}")
    ensure(claims.get("mode") == session["mode"], f"mode {claims.get('mode')!r} != {session['mode']!r}")
    ensure(claims["exp"] - claims["iat"] == ttl, f"exp - iat = {claims['exp'] - claims['iat']}, not {ttl}")


def main() -> int:
    repo = Path(__file__).resolve().parent.parent
    if len(sys.argv) > 2 or (len(sys.argv) == 2 and sys.argv[1] in ("-h", "--help")):
        print(__doc__)
        return 2
    if len(sys.argv) == 2:
        bin_dir = Path(sys.argv[1])
    else:
        target = os.environ.get("CARGO_TARGET_DIR")
        bin_dir = (Path(target) if target else repo / "target") / "debug"
    bin_dir = bin_dir.resolve()
    xtask = bin_dir / "xtask"
    for binary in (bin_dir / "game-service", xtask):
        if not os.access(binary, os.X_OK):
            print(f"error: {binary} missing; run `cargo build --workspace --bins`", file=sys.stderr)
            return 2

    # SIGTERM/SIGINT (CI cancelling) still run the `finally` below.
    def interrupted(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)

    secret = f"interop-{os.urandom(16).hex()}"
    instances: list[Instance] = []
    results: list[bool] = []

    def check(name: str, body: Callable[[], str | None]) -> None:
        try:
            detail = body()
        except Exception as error:  # noqa: BLE001 - every failure is reported
            results.append(False)
            reason = str(error) if isinstance(error, CheckFailed) else traceback.format_exc().rstrip()
            print(f"FAIL  {name}: {reason}", flush=True)
        else:
            results.append(True)
            print(f"ok    {name}" + (f" ({detail})" if detail else ""), flush=True)

    with tempfile.TemporaryDirectory(prefix="join-token-interop-") as tmp:
        workdir = Path(tmp)
        try:
            try:
                key1, key2 = workdir / "key1.pem", workdir / "key2.pem"
                key1_public = workdir / "key1.pub.pem"
                for key in (key1, key2):
                    subprocess.run(
                        ["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)],
                        check=True, capture_output=True, timeout=30,
                    )
                subprocess.run(
                    ["openssl", "pkey", "-in", str(key1), "-pubout", "-out", str(key1_public)],
                    check=True, capture_output=True, timeout=30,
                )
                x1, x2 = public_x(key1), public_x(key2)

                a = Instance("A", bin_dir, workdir, secret, JOIN_TOKEN_KEY_FILE=str(key1))
                instances.append(a)
                b = Instance(
                    "B", bin_dir, workdir, secret,
                    JOIN_TOKEN_KEY_FILE=str(key2), JOIN_TOKEN_VERIFY_KEY_FILES=str(key1_public),
                )
                instances.append(b)
                c = Instance("C", bin_dir, workdir, secret, JOIN_TOKEN_TTL_SECS="1")
                instances.append(c)
                deadline = time.monotonic() + 30
                for instance in instances:
                    instance.wait_healthy(deadline)

                service = mint(xtask, secret, "qa-server", "--service", "--ttl", "3600")
                # C's token first: its second of life runs while the other checks do.
                carol = c.connect(mint(xtask, secret, "carol", "--ttl", "3600"))
                alice = a.connect(mint(xtask, secret, "alice", "--ttl", "3600"))
                bob = b.connect(mint(xtask, secret, "bob", "--ttl", "3600"))
                token_a, token_b, token_c = alice["join_token"], bob["join_token"], carol["join_token"]
            except Exception:
                traceback.print_exc()
                for instance in instances:
                    print(instance.log_tail(), file=sys.stderr)
                print("FAIL  setup: could not start the game services or get join tokens")
                return 1

            # --- A: the set, the token, the claims -------------------------------------
            def a_jwks() -> str:
                status, headers, jwks = http("GET", a.jwks_url)
                ensure(status == 200, f"answered {status}")
                ensure(
                    headers.get("cache-control") == "public, max-age=300",
                    f"Cache-Control is {headers.get('cache-control')!r}",
                )
                [kid] = check_jwks_document(jwks, [x1])
                return f"kid {kid}"

            check("A's JWKS: one OKP/Ed25519 EdDSA sig key, x from key1.pem, kid = RFC 7638 thumbprint", a_jwks)

            def a_header() -> str:
                header = jwt.get_unverified_header(token_a)
                ensure(header.get("alg") == "EdDSA", f"alg {header.get('alg')!r}")
                ensure(header.get("kid") == thumbprint(x1), f"kid {header.get('kid')!r} != thumbprint of key1 {thumbprint(x1)!r}")
                return f"alg EdDSA, kid {header['kid']}"

            check("A's join token header: alg EdDSA, kid = thumbprint of key1 computed here", a_header)

            def a_verifies() -> str:
                claims = verify_with_client(token_a, a.jwks_url)
                check_claims(claims, "alice", alice, DEFAULT_TTL_SECS)
                return f"sub {claims['sub']}, sid {claims['sid']}, exp - iat = {claims['exp'] - claims['iat']}"

            check("A's token verifies with PyJWKClient on A's JWKS (EdDSA, aud game-server, iss game-platform)", a_verifies)

            def tampered() -> str:
                forged = tamper_sub(token_a, "mallory")
                ensure(jwt.decode(forged, options={"verify_signature": False})["sub"] == "mallory", "tampering failed")
                error = expect_raises(InvalidSignatureError, lambda: verify_with_client(forged, a.jwks_url))
                online = a.verify_online(service, forged)
                ensure(
                    online.get("valid") is False and online.get("error") == "bad_signature",
                    f"A's /v1/join-tokens/verify said {online}",
                )
                return f"PyJWT: {type(error).__name__}; A online: bad_signature"

            check("tampered token (sub replaced, signature kept) is refused", tampered)

            def wrong_audience() -> str:
                error = expect_raises(
                    InvalidAudienceError, lambda: verify_with_client(token_a, a.jwks_url, audience="chat-server")
                )
                return f"{type(error).__name__}: {error}"

            check("verifying with audience chat-server is refused", wrong_audience)

            def wrong_issuer() -> str:
                error = expect_raises(
                    InvalidIssuerError, lambda: verify_with_client(token_a, a.jwks_url, issuer="someone-else")
                )
                return f"{type(error).__name__}: {error}"

            check("verifying with issuer someone-else is refused", wrong_issuer)

            # --- C: a key A never published ---------------------------------------------
            def c_own() -> str:
                [kid_c] = check_jwks_document(c.jwks(), [None])
                header = jwt.get_unverified_header(token_c)
                ensure(header.get("kid") == kid_c, f"token kid {header.get('kid')!r} != C's kid {kid_c!r}")
                claims = verify_with_client(token_c, c.jwks_url, verify_exp=False)
                check_claims(claims, "carol", carol, 1)
                return f"kid {kid_c}"

            check("C (ephemeral key, TTL 1 s): its JWKS kid = thumbprint, and its token's signature verifies with it", c_own)

            def unknown_kid() -> str:
                kid_c = jwt.get_unverified_header(token_c)["kid"]
                ensure(kid_c not in [k["kid"] for k in a.jwks()["keys"]], "A publishes C's kid")
                error = expect_raises(PyJWKClientError, lambda: verify_with_client(token_c, a.jwks_url))
                ensure("Unable to find a signing key" in str(error), f"another PyJWKClientError: {error}")
                expect_raises(KeyError, lambda: PyJWKSet.from_dict(a.jwks())[kid_c])
                online = a.verify_online(service, token_c)
                ensure(
                    online.get("valid") is False and online.get("error") == "unknown_key",
                    f"A's /v1/join-tokens/verify said {online}",
                )
                return f"PyJWKClientError after refetching: {error}; A online: unknown_key"

            check("C's token checked against A's JWKS: no key for its kid", unknown_kid)

            # --- B: rotation --------------------------------------------------------------
            def b_jwks() -> str:
                jwks = b.jwks()
                kids = check_jwks_document(jwks, [x2, x1])
                ensure(kids == [thumbprint(x2), thumbprint(x1)], f"kids {kids}")
                return f"kids [{kids[0]} (key2), {kids[1]} (key1)]"

            check("B's JWKS lists key2 (signing) first, then key1 (rotated out), kids = thumbprints", b_jwks)

            def b_offline() -> str:
                # B's set as one document, fetched once: no other source of keys.
                keys = PyJWKSet.from_dict(b.jwks())
                seen = []
                for token, player, session, x in ((token_a, "alice", alice, x1), (token_b, "bob", bob, x2)):
                    kid = jwt.get_unverified_header(token)["kid"]
                    ensure(kid == thumbprint(x), f"{player}'s token kid {kid!r} is not its key's thumbprint")
                    try:
                        key = keys[kid]
                    except KeyError:
                        raise CheckFailed(f"B's JWKS has no key for {player}'s kid {kid}") from None
                    claims = decode(token, key.key)
                    check_claims(claims, player, session, DEFAULT_TTL_SECS)
                    seen.append(f"{player}'s ({'key1' if x == x1 else 'key2'})")
                return ", ".join(seen)

            check("after rotation, tokens of key1 (A's) and key2 (B's) verify with B's JWKS alone", b_offline)

            def b_online() -> str:
                seen = []
                for token, player, session in ((token_a, "alice", alice), (token_b, "bob", bob)):
                    online = b.verify_online(service, token)
                    ensure(
                        online.get("valid") is True and online.get("error") is None,
                        f"{player}'s token: {online}",
                    )
                    ensure(
                        online.get("player_id") == player and online.get("session_id") == session["id"],
                        f"{player}'s token: {online}",
                    )
                    seen.append(f"{player}: valid, member {online.get('member')}")
                return "; ".join(seen)

            check("B's /v1/join-tokens/verify (service token) says valid for both", b_online)

            # --- C: expiry ----------------------------------------------------------------
            def expired() -> str:
                exp = jwt.decode(token_c, options={"verify_signature": False})["exp"]
                # PyJWT refuses once now >= exp (leeway 0): poll for that instant.
                while time.time() < exp:
                    time.sleep(0.05)
                error = expect_raises(ExpiredSignatureError, lambda: verify_with_client(token_c, c.jwks_url))
                return f"{type(error).__name__} {time.time() - exp:.2f} s after exp"

            check("C's token is refused once its exp has passed", expired)

            def expired_online() -> str:
                # The service allows a few seconds of clock skew: poll until it says expired.
                exp = jwt.decode(token_c, options={"verify_signature": False})["exp"]
                deadline = exp + 30
                while True:
                    online = c.verify_online(service, token_c)
                    if online.get("error") == "expired":
                        ensure(online.get("valid") is False, f"{online}")
                        return f"expired {time.time() - exp:.1f} s after exp"
                    ensure(online.get("valid") is True, f"neither valid nor expired: {online}")
                    ensure(time.time() < deadline, f"still {online} 30 s after exp")
                    time.sleep(0.25)

            check("C's /v1/join-tokens/verify also says expired (after its clock-skew leeway)", expired_online)
        finally:
            for instance in instances:
                instance.stop()

    failed = results.count(False)
    print(f"{len(results) - failed} of {len(results)} join-token interop checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
