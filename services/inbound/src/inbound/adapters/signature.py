"""SNS signature verification: the signing certificate, fetched and cached, and RSA.

SignatureVersion 1 is SHA1withRSA, 2 is SHA256withRSA, both PKCS#1 v1.5 over the
canonical string of `inbound.domain.sns`. Certificates come only from URLs that pass
`check_signing_cert_url` (https, `.pem`, an SNS host), over HTTPS with certificate
verification (httpx defaults), and are cached: AWS signs every message with the same
certificate for months, and a fetch per message would make the endpoint as slow and as
available as that fetch.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from inbound.domain.sns import SnsMessage, Untrusted, check_signing_cert_url

#: Fetches the PEM bytes at a (validated) URL. Injected so tests need no AWS.
CertificateFetcher = Callable[[str], Awaitable[bytes]]

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
_MAX_CERT_BYTES = 64 * 1024


class CertificateUnavailable(RuntimeError):
    """The signing certificate could not be fetched right now: answer 5xx so that SNS
    delivers the message again (SNS retries 5xx and network errors, never 4xx)."""


def https_certificate_fetcher(client: httpx.AsyncClient) -> CertificateFetcher:
    """Fetch certificates with `client` (HTTPS, TLS verified, no redirects)."""

    async def fetch(url: str) -> bytes:
        try:
            response = await client.get(url, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise CertificateUnavailable(
                f"signing certificate could not be fetched: {type(exc).__name__}"
            ) from None
        if response.status_code != 200:
            raise CertificateUnavailable(
                f"signing certificate could not be fetched: HTTP {response.status_code}"
            )
        if len(response.content) > _MAX_CERT_BYTES:
            raise Untrusted("signing certificate is too large")
        return response.content

    return fetch


class CertificateCache:
    """Public keys by certificate URL: least recently used evicted, each kept `ttl` s."""

    def __init__(
        self,
        fetcher: CertificateFetcher,
        *,
        ttl_seconds: float = 86400,
        max_entries: int = 16,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetcher = fetcher
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, rsa.RSAPublicKey]] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self.fetches = 0

    async def public_key(self, url: str) -> rsa.RSAPublicKey:
        check_signing_cert_url(url)  # never fetch from anywhere else
        key = self._cached(url)
        if key is not None:
            return key
        # One fetch per URL even when a burst of messages arrives with a cold cache.
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            key = self._cached(url)
            if key is None:
                key = _load_public_key(await self._fetcher(url))
                self.fetches += 1
                self._entries[url] = (self._clock() + self._ttl, key)
                self._entries.move_to_end(url)
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
        self._locks.pop(url, None)
        return key

    def _cached(self, url: str) -> rsa.RSAPublicKey | None:
        entry = self._entries.get(url)
        if entry is None:
            return None
        expires, key = entry
        if expires <= self._clock():
            del self._entries[url]
            return None
        self._entries.move_to_end(url)
        return key


def _load_public_key(pem: bytes) -> rsa.RSAPublicKey:
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise Untrusted("signing certificate is not a PEM X.509 certificate") from None
    now = datetime.now(UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise Untrusted("signing certificate is expired or not yet valid")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise Untrusted("signing certificate does not hold an RSA key")
    return key


class SignatureVerifier:
    def __init__(self, certificates: CertificateCache) -> None:
        self.certificates = certificates

    async def verify(self, message: SnsMessage) -> None:
        """Raise `Untrusted` unless SNS signed exactly this message."""
        algorithm = _HASHES.get(message.signature_version)
        if algorithm is None:
            raise Untrusted(f"unsupported SignatureVersion {message.signature_version!r}")
        key = await self.certificates.public_key(message.signing_cert_url)
        try:
            key.verify(
                message.signature, message.canonical_string(), padding.PKCS1v15(), algorithm()
            )
        except InvalidSignature:
            raise Untrusted("signature does not match") from None
