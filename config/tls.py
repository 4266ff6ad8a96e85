"""A self-signed ECDSA certificate so that gunicorn can serve HTTPS out of the box (SPEC §3 TLS gate).

The certificate names only loopback addresses: it is for running Keyward on one machine. Behind
a real certificate, point ``KEYWARD_TLS_CERTFILE`` and ``KEYWARD_TLS_KEYFILE`` at it instead.
"""

import datetime
import fcntl
import ipaddress
import os
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERTFILE = "cert.pem"
KEYFILE = "key.pem"
VALIDITY = datetime.timedelta(days=825)  # the longest that browsers accept for a server certificate
RENEW_BEFORE = datetime.timedelta(days=7)
HOSTNAMES = ["localhost"]
ADDRESSES = ["127.0.0.1", "::1"]


def ensure_certificate(directory) -> tuple[Path, Path]:
    """Return (certfile, keyfile) in ``directory``, generating them first if missing or expiring.

    Several servers may start at once on the same directory: a lock file serialises them and each
    file is written under a temporary name and renamed, so no server ever reads half a file.
    """
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    certfile, keyfile = directory / CERTFILE, directory / KEYFILE
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _usable(certfile, keyfile):
            key = ec.generate_private_key(ec.SECP256R1())
            certificate = _self_signed_certificate(key)
            _write_atomically(keyfile, _private_key_pem(key), mode=0o600)
            _write_atomically(certfile, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return certfile, keyfile


def _usable(certfile: Path, keyfile: Path) -> bool:
    if not (certfile.exists() and keyfile.exists()):
        return False
    certificate = x509.load_pem_x509_certificate(certfile.read_bytes())
    return certificate.not_valid_after_utc - RENEW_BEFORE > datetime.datetime.now(datetime.UTC)


def _private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _self_signed_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Keyward"),
        x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
    ])
    now = datetime.datetime.now(datetime.UTC)
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate a little clock skew
        .not_valid_after(now + VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(host) for host in HOSTNAMES]
                + [x509.IPAddress(ipaddress.ip_address(address)) for address in ADDRESSES]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )


def _write_atomically(path: Path, content: bytes, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
