"""HTTP to one registry repository: ping, auth, retries, timeouts, redirects and size limits.

- The first request pings /v2/: https, or plain http when TLS verification is off and https fails.
- Every request names the token scopes it needs; a 401 is answered once (Basic, or a Bearer token
  from the realm, refreshed before it expires and again when the registry says it is invalid).
- Connection errors, timeouts, 408/429/5xx are retried with backoff (`retries` times) unless the
  caller says the request must not be repeated blindly (uploads resume instead, see upload.py).
- Every attempt runs under a Pace (pace.py): --timeout seconds of silence, or a window of
  --timeout seconds moving less than the minimum rate, ends it. A small body (manifest, token,
  referrers) is read inside the attempt (`read=`), so one that breaks off or trickles is retried.
- Redirects are followed by hand (at most 10, loops refused, no https->http downgrade); the
  Authorization header only goes to the registry's own origin.
- Nothing here ever puts a credential or token in a message.
"""

from __future__ import annotations

import base64
import os
import random
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from urllib.parse import urljoin, urlparse

import requests
import urllib3

from chrootforge import __version__, log, untrusted
from chrootforge.errors import CfError
from chrootforge.oci import mediatypes as mt
from chrootforge.registry.authfile import Credentials, find_credentials
from chrootforge.registry.challenge import Challenge, select_challenge
from chrootforge.registry.options import ENV_MIN_RATE, ENV_RETRIES, ENV_TIMEOUT, RegistryOptions
from chrootforge.registry.pace import Pacer
from chrootforge.registry.tls import ssl_context, tls_config

ACCEPT_MANIFESTS = f"{mt.MANIFEST}, {mt.INDEX}, {mt.DOCKER_MANIFEST}, {mt.DOCKER_LIST}"
RETRY_STATUS = frozenset((408, 429, 500, 502, 503, 504))
MAX_REDIRECTS = 10
# what OpenSSL says when the server answers a TLS hello with plain HTTP ("HTTP/1.1 400 ...")
_NOT_TLS = r"wrong version number|record layer failure|packet length too long|unknown protocol|http request"
_WARNED: set[str] = set()  # registries warned about credentials over an unverified connection
SMALL_BODY = 1 << 20  # token and error bodies
NETWORK_HINT = (
    f"is the registry up and reachable? --timeout/${ENV_TIMEOUT}, --retry-times/${ENV_RETRIES} "
    f"and ${ENV_MIN_RATE} tune the limits"
)


class RegistryError(CfError):
    """A registry request failed; `status`/`code` tell callers what the registry said."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        status: int | None = None,
        code: str | None = None,
        retryable: bool = False,
    ):
        super().__init__(message, hint)
        self.status = status
        self.code = code
        self.retryable = retryable


def backoff(attempt: int) -> float:
    """Exponential with jitter (parallel uploads must not retry in lockstep)."""
    base = float(os.environ.get("CHROOTFORGE_RETRY_BACKOFF", "0.5"))
    return min(base * (2**attempt), 8.0) * random.uniform(0.5, 1.0)


def _printable(text: str, limit: int = 200) -> str:
    clean = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return clean if len(clean) <= limit else clean[:limit] + "…"


def read_limited(resp, limit: int, what: str) -> bytes:
    """The whole body, refusing more than `limit` bytes (announced or actual)."""
    length = resp.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limit:
        resp.close()
        raise RegistryError(
            f"{what} is {int(length)} bytes, more than the {limit} bytes allowed; refusing it"
        )
    body = bytearray()
    for chunk in resp.iter_content(65536):
        body += chunk
        if len(body) > limit:
            resp.close()
            raise RegistryError(f"{what} is larger than the {limit} bytes allowed; refusing it")
    return bytes(body)


def error_detail(resp) -> tuple[str, str | None]:
    """'HTTP 400 DIGEST_INVALID: ...' from a registry error response, and its first code."""
    detail = f"HTTP {resp.status_code}"
    code = None
    try:
        body = read_limited(resp, 64 << 10, "error body")
        errors = untrusted.loads_json(body, "error body").get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            code = str(errors[0].get("code", "")) or None
            parts = [
                f"{e.get('code', '')}: {e.get('message', '')}".strip(": ")
                for e in errors[:2]
                if isinstance(e, dict)
            ]
            detail += " " + _printable("; ".join(parts))
    except (RegistryError, ValueError, AttributeError, requests.RequestException):
        pass
    return detail, code


class _NoNetrc(requests.auth.AuthBase):
    """Set as the session's auth so requests never reads ~/.netrc: we decide what to send."""

    def __call__(self, request):
        return request


class _TLSAdapter(requests.adapters.HTTPAdapter):
    """Uses our SSLContext (system CAs + certs.d + client certificate) for every connection."""

    def __init__(self, context, **kwargs):
        self._context = context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["ssl_context"] = self._context
        return super().init_poolmanager(*args, **kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        # $REQUESTS_CA_BUNDLE would make urllib3 reload a CA file on every connection: the context
        # already holds the system CAs (OpenSSL honours $SSL_CERT_FILE/$SSL_CERT_DIR itself)
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        pool.pop("ca_certs", None)
        pool.pop("ca_cert_dir", None)
        return host, pool

    def cert_verify(self, conn, url, verify, cert) -> None:
        # the context carries the CAs and the client certificate; only the mode is set here
        conn.cert_reqs = "CERT_REQUIRED" if verify else "CERT_NONE"


class _PlainAdapter(requests.adapters.HTTPAdapter):
    """Plain HTTP (--tls-verify=false) through connections whose sockets the pacer paces."""

    def __init__(self, pacer: Pacer, **kwargs):
        self._pool_class = pacer.http_pool()
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(
            self.poolmanager.pool_classes_by_scheme, http=self._pool_class
        )


def _preload(resp: requests.Response, limit: int, what: str) -> requests.Response:
    """Read the whole body now (at most `limit` bytes), inside the attempt: a body that breaks off
    or trickles then fails the attempt, which is retried. It is served from .content after."""
    resp._content = read_limited(resp, limit, what)  # requests' own cache of a read body
    return resp


def _unverified_is_intended(verify: bool) -> None:
    """--tls-verify=false was asked for: urllib3 must not warn about it on every connection."""
    if not verify:
        warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)


class _PacedSession(requests.Session):
    """Each request (its redirects and the reading of its body) under a fresh Pace."""

    def __init__(self, pacer: Pacer):
        super().__init__()
        self.pacer = pacer

    def request(self, *args, **kwargs):
        self.pacer.begin()
        return super().request(*args, **kwargs)


def tls_session(host: str, options: RegistryOptions | None = None) -> requests.Session:
    """A session trusting for HOST[:PORT] what the registry client would (system CAs, certs.d or
    --cert-dir, --tls-verify=false), with the same floor under every transfer (pace.py), for
    other servers of a build (the binhost). It reads ~/.netrc, as requests does: that is where
    such a server's credentials go."""
    options = options or RegistryOptions()
    _unverified_is_intended(options.tls_verify)
    pacer = Pacer(options.timeout, options.min_rate)
    session = _PacedSession(pacer)
    session.headers.update({"User-Agent": f"chrootforge/{__version__}"})
    session.verify = options.tls_verify
    context = pacer.pace_tls(ssl_context(tls_config(host, options.tls_verify, options.cert_dir)))
    session.mount("https://", _TLSAdapter(context, max_retries=0))
    session.mount("http://", _PlainAdapter(pacer, max_retries=0))
    return session


def api_host(registry: str) -> str:
    """Where a registry's API answers: Docker Hub's name is docker.io, its API registry-1.docker.io
    (as containers/image and docker resolve it); every other registry answers at its name."""
    return "registry-1.docker.io" if registry in ("docker.io", "index.docker.io") else registry


def _origin(url: str) -> tuple[str, str, int | None]:
    parsed = urlparse(url)
    return parsed.scheme, (parsed.hostname or "").lower(), parsed.port


class Client:
    """Talks to REGISTRY for REPOSITORY; safe to share between threads."""

    def __init__(self, registry: str, repository: str, options: RegistryOptions | None = None):
        self.registry = registry
        self.endpoint = api_host(registry)
        self.repository = repository
        self.options = options or RegistryOptions()
        self.tls = tls_config(registry, self.options.tls_verify, self.options.cert_dir)
        _unverified_is_intended(self.tls.verify)
        self.credentials: Credentials | None = find_credentials(
            registry, repository, self.options.creds, self.options.authfile
        )
        self.session = requests.Session()
        self.session.auth = _NoNetrc()
        self.session.headers.update(
            {"User-Agent": f"chrootforge/{__version__}", "Accept-Encoding": "identity"}
        )
        self.pacer = Pacer(self.options.timeout, self.options.min_rate)
        adapter = _TLSAdapter(
            self.pacer.pace_tls(ssl_context(self.tls)),
            pool_connections=4,
            pool_maxsize=max(4, self.options.jobs + 2),
            max_retries=0,
        )
        self.session.mount("https://", adapter)
        self.session.mount(
            "http://", _PlainAdapter(self.pacer, pool_maxsize=max(4, self.options.jobs + 2), max_retries=0)
        )
        self.base: str | None = None
        self._lock = threading.Lock()
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}

    # -- public -------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        """/v2/<repository>/<path> on the registry."""
        self.ping()
        return f"{self.base}/v2/{self.repository}/{path}"

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        scopes: tuple[str, ...] = (),
        headers: dict | None = None,
        body: Callable[[], Iterable[bytes] | bytes] | None = None,
        expect: tuple[int, ...] = (200,),
        retry: bool = True,
        read: int | None = None,
    ) -> requests.Response:
        """One API call with auth, retries and redirects; a response whose status is in `expect`
        (streamed: read or close it), else RegistryError. `body` builds a fresh body per try.
        `read`: the body (at most that many bytes) is read within each attempt, into .content."""
        if not url.startswith(("http://", "https://")):
            url = self.url(url)
        scopes = scopes or self.pull_scope()

        def attempt() -> requests.Response:
            resp = self._authenticated(method, url, what, scopes, headers or {}, body)
            if read is None or resp.status_code not in expect:
                return resp
            return _preload(resp, read, f"{self._where()}: the answer to {what}")

        resp = self._retrying(attempt, f"{self._where()}: {what}", self.options.retries if retry else 0)
        if resp.status_code in expect:
            return resp
        detail, code = error_detail(resp)
        raise self._status_error(what, resp.status_code, detail, code)

    def _retrying(
        self, send: Callable[[], requests.Response], where: str, retries: int, tls_host: str | None = None
    ) -> requests.Response:
        """send() until it answers with a status worth keeping: network errors and 408/429/5xx are
        retried; the last such answer is returned, or RegistryError when none came."""
        last = ""
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(backoff(attempt - 1))
            try:
                resp = send()
            except requests.exceptions.SSLError as err:
                raise self._tls_error(err, tls_host) from err
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as err:
                last = describe_network_error(err, self.options.timeout)
                continue
            if resp.status_code in RETRY_STATUS and attempt < retries:
                last = error_detail(resp)[0]
                _sleep_retry_after(resp)
                continue
            return resp
        tries = retries + 1
        raise RegistryError(
            f"{where}: {last} (after {tries} attempt{'s' if tries > 1 else ''})",
            hint=NETWORK_HINT,
            retryable=True,
        )

    def pull_scope(self) -> tuple[str, ...]:
        return (f"repository:{self.repository}:pull",)

    def push_scope(self) -> tuple[str, ...]:
        return (f"repository:{self.repository}:pull,push",)

    def close(self) -> None:
        self.session.close()

    # -- ping and auth ------------------------------------------------------------------------
    def ping(self) -> None:
        """Find the scheme and the authentication the registry wants (GET /v2/), once."""
        with self._lock:
            if self.base is not None:
                return
            resp = None
            if not self.tls.verify:  # an insecure registry may speak plain HTTP: try https once
                try:
                    resp = self._send("GET", f"https://{self.endpoint}/v2/", {}, None, auth_origin=None)
                    base = f"https://{self.endpoint}"
                except (requests.ConnectionError, requests.Timeout):
                    resp = None
            if resp is None:
                base = f"{'https' if self.tls.verify else 'http'}://{self.endpoint}"
                resp = self._retrying(
                    lambda: self._send("GET", f"{base}/v2/", {}, None, auth_origin=None),
                    f"{self.registry}: cannot reach the registry",
                    self.options.retries,
                )
            if resp.status_code not in (200, 401):
                raise RegistryError(
                    f"{self.registry} is not a container registry ({base}/v2/ answered "
                    f"{error_detail(resp)[0]})",
                    hint="check the host and port of the reference",
                )
            if resp.status_code == 401:
                self._challenge = select_challenge(resp.headers.get("WWW-Authenticate"), self.registry)
            resp.close()
            self.base = base
            if not self.tls.verify and self.credentials and self.registry not in _WARNED:
                _WARNED.add(self.registry)  # once per registry and process (a build pushes many)
                how = "plain HTTP" if base.startswith("http://") else "TLS without checking its certificate"
                log.warn(f"sending credentials for {self.registry} over {how} (--tls-verify=false)")

    def _authenticated(self, method, url, what, scopes, headers, body):
        self.ping()
        answered = False
        while True:
            authz = self._authorization(scopes)
            resp = self._send(method, url, headers, body, auth_origin=self.base, authz=authz)
            if resp.status_code != 401 or answered:
                if resp.status_code == 401:
                    raise self._denied(what, resp, authz is not None)
                return resp
            header = resp.headers.get("WWW-Authenticate")
            resp.close()
            challenge = select_challenge(header, self.registry)
            with self._lock:
                self._challenge = challenge
                scopes = tuple(dict.fromkeys(scopes + challenge.scopes))
                self._tokens.pop(_scope_key(scopes), None)
            if challenge.scheme == "basic" and self.credentials is None:
                raise self._denied(what, None, False)
            answered = True

    def _authorization(self, scopes: tuple[str, ...]) -> str | None:
        challenge = self._challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            return self._basic()
        key = _scope_key(scopes)
        with self._lock:
            cached = self._tokens.get(key)
            if cached and time.monotonic() < cached[1]:
                return "Bearer " + cached[0]
            token, lifetime, started = self._fetch_token(challenge, key)
            # refresh a little before the registry would refuse it
            self._tokens[key] = (token, started + lifetime - min(10.0, lifetime / 5))
            return "Bearer " + token

    def _basic(self) -> str | None:
        if self.credentials is None:
            return None
        raw = f"{self.credentials.username}:{self.credentials.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def _fetch_token(self, challenge: Challenge, scopes: tuple[str, ...]) -> tuple[str, float, float]:
        realm = challenge.params["realm"]
        if urlparse(realm).scheme != "https" and self.tls.verify:
            raise RegistryError(
                f"{self.registry}: the token realm {_printable(realm)} is not HTTPS; "
                f"refusing to send credentials there",
                hint="--tls-verify=false allows it (only on a trusted network)",
            )
        params = [("service", challenge.params["service"])] if "service" in challenge.params else []
        params += [("scope", s) for s in scopes]
        if self.credentials:
            params.append(("account", self.credentials.username))
        basic = self._basic()
        prepared = requests.Request("GET", realm, params=params).prepare()
        realm_host = urlparse(realm).netloc
        started = time.monotonic()
        where = f"{self.registry}: the token server {realm_host}"
        resp = self._retrying(
            lambda: _preload(
                self._send("GET", prepared.url or realm, {}, None, auth_origin=realm, authz=basic),
                SMALL_BODY,
                f"{where}: the token response",
            ),
            where,
            self.options.retries,
            realm_host,
        )
        if resp.status_code in (401, 403):
            resp.close()
            refused = (
                f"the credentials from {self.credentials.source}" if self.credentials else "anonymous access"
            )
            raise RegistryError(
                f"{where} refused {refused}",
                status=resp.status_code,
                hint="check the user name and password"
                if self.credentials
                else "give --creds USER:PASS or log in with podman login / docker login",
            )
        if resp.status_code != 200:
            raise RegistryError(f"{where} answered {error_detail(resp)[0]}", status=resp.status_code)
        try:
            data = untrusted.loads_json(resp.content, where)
            token = data.get("token") or data.get("access_token")
            lifetime = float(data.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError, RegistryError):
            token, lifetime = None, 0
        if not isinstance(token, str) or not token or any(c in token for c in "\r\n "):
            raise RegistryError(f"{where} sent no usable token")
        return token, max(lifetime, 1.0), started

    # -- the wire -----------------------------------------------------------------------------
    def _send(
        self, method: str, url: str, headers: dict, body, *, auth_origin: str | None, authz: str | None = None
    ) -> requests.Response:
        """One request, following redirects by hand."""
        seen: set[str] = set()
        timeout = (self.options.timeout, self.options.timeout)
        self.pacer.begin()  # (for this attempt, its redirects and the reading of its body)
        for _hop in range(MAX_REDIRECTS + 1):
            sent = dict(headers)
            if authz and auth_origin and _origin(url) == _origin(auth_origin):
                sent["Authorization"] = authz
            data = body() if body is not None else None
            # verify= on each call: requests lets $REQUESTS_CA_BUNDLE override a session's False
            resp = self.session.request(
                method,
                url,
                headers=sent,
                data=data,
                stream=True,
                timeout=timeout,
                allow_redirects=False,
                verify=self.tls.verify,
            )
            location = resp.headers.get("Location")
            if resp.status_code not in (301, 302, 303, 307, 308) or not location:
                return resp
            resp.close()
            target = urljoin(url, location)
            if urlparse(target).scheme not in ("http", "https"):
                raise RegistryError(f"{self.registry} redirected to a non-HTTP URL; refusing it")
            if urlparse(url).scheme == "https" and urlparse(target).scheme == "http" and self.tls.verify:
                raise RegistryError(f"{self.registry} redirected from HTTPS to plain HTTP; refusing it")
            if target in seen or target == url:
                raise RegistryError(
                    f"{self.registry}: redirect loop at {_printable(urlparse(target).path)}",
                    hint="the registry (or a proxy in front of it) is misconfigured",
                )
            seen.add(url)
            if resp.status_code in (301, 302, 303) and method not in ("GET", "HEAD"):
                method, body = "GET", None
            url = target
        raise RegistryError(
            f"{self.registry}: more than {MAX_REDIRECTS} redirects; refusing to follow",
            hint="the registry (or a proxy in front of it) is misconfigured",
        )

    # -- errors -------------------------------------------------------------------------------
    def _where(self) -> str:
        return f"{self.registry}/{self.repository}"

    def _status_error(self, what: str, status: int, detail: str, code: str | None) -> RegistryError:
        hint = None
        if status == 403:
            hint = "the registry denies this; check the user's permissions on the repository"
        elif status == 404 and code in ("NAME_UNKNOWN", "MANIFEST_UNKNOWN", "BLOB_UNKNOWN"):
            hint = "check the repository, tag or digest"
        return RegistryError(
            f"{self._where()}: {what}: {detail}",
            hint=hint,
            status=status,
            code=code,
            retryable=status in RETRY_STATUS,
        )

    def _denied(self, what: str, resp, sent_auth: bool) -> RegistryError:
        detail = error_detail(resp)[0] if resp is not None else "HTTP 401"
        if self.credentials and sent_auth:
            return RegistryError(
                f"{self._where()}: {what}: access denied with the credentials from "
                f"{self.credentials.source} ({detail})",
                hint="check the user name, the password and the user's rights",
                status=401,
            )
        return RegistryError(
            f"{self._where()}: {what}: the registry requires authentication ({detail})",
            hint="give --creds USER:PASS, --authfile, or log in with podman login",
            status=401,
        )

    def _tls_error(self, err: Exception, host: str | None = None) -> RegistryError:
        host = host or self.registry
        reason = re.sub(r"\s*\(_ssl\.c:\d+\)", "", _printable(_root_cause(err)))
        where = (
            f"--cert-dir {self.tls.cert_dir}"
            if self.options.cert_dir
            else (f"{self.tls.cert_dir}" if self.tls.cert_dir else f"certs.d/{self.registry}/")
        )
        if re.search(
            r"alert (bad certificate|certificate required|handshake failure)", reason, re.IGNORECASE
        ):
            hint = f"the registry wants a client certificate: put NAME.cert and NAME.key in {where}"
        elif re.search(_NOT_TLS, reason, re.IGNORECASE):  # the server answered the TLS hello in clear
            return RegistryError(
                f"TLS with {host} failed: it answered in plain HTTP (a registry without TLS?)",
                hint="--tls-verify=false lets chrootforge use plain HTTP with it (only on a network you "
                "trust: nothing is encrypted)",
            )
        else:
            hint = (
                f"put the registry's CA as ca.crt in {where} (and a client NAME.cert/NAME.key if it "
                f"asks for one); --tls-verify=false skips verification"
            )
        return RegistryError(f"TLS with {host} failed: {reason}", hint=hint)


def _scope_key(scopes: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(scopes)))


def describe_network_error(err: BaseException, timeout: float) -> str:
    """One short phrase for a connection error (chrootforge.neterror), a timeout's with its limit."""
    from chrootforge.neterror import cause

    reason = cause(err)
    return f"no answer within {timeout:g}s" if reason.startswith("timed out") else reason


def _root_cause(err: BaseException) -> str:
    """The innermost reason (urllib3 wraps the socket error several times)."""
    seen = set()
    while True:
        nxt = err.__cause__ or err.__context__
        inner = err.args[0] if err.args and isinstance(err.args[0], BaseException) else None
        reason = getattr(err, "reason", None)
        candidate = inner or (reason if isinstance(reason, BaseException) else None) or nxt
        if candidate is None or id(candidate) in seen:
            break
        seen.add(id(err))
        err = candidate
    text = str(err)
    if "timed out" in text.lower():
        return "timed out"
    return text.split(": ", 1)[-1] if text.startswith("<") else text


def _sleep_retry_after(resp) -> None:
    """Honour a short Retry-After on 429/503 (at most 10 s), then drop the response."""
    value = resp.headers.get("Retry-After", "")
    resp.close()
    if value.isdigit():
        time.sleep(min(int(value), 10))
