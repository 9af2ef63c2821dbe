"""Generate the self-signed TLS certificate the gateway serves for local runs and tests.

Usage: python deploy/gen_cert.py [--out gateway/certs] [--force]
Writes cert.pem and key.pem (the key readable by its owner only). Compose mounts the same
folder into the Traefik container; production puts a real certificate there instead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "gateway" / "certs"
HOSTNAMES = ("localhost", "traefik", "gateway")


def generate(*, out_dir: Path, days: int = 825, force: bool = False) -> tuple[Path, Path]:
    """Write cert.pem and key.pem into out_dir unless both exist already (or force)."""
    cert_path, key_path = out_dir / "cert.pem", out_dir / "key.pem"
    if cert_path.is_file() and key_path.is_file() and not force:
        return cert_path, key_path
    out_dir.mkdir(parents=True, exist_ok=True)
    # P-256: small, fast and accepted by every TLS client we care about.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "MusicSpace local gateway")])
    now = dt.datetime.now(dt.UTC)
    san = [x509.DNSName(host) for host in HOSTNAMES] + [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        # 825 days: the longest validity macOS/iOS still accept for a server certificate.
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(key_path, key_bytes, mode=0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return cert_path, key_path


def _write(path: Path, data: bytes, *, mode: int) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--days", type=int, default=825)
    parser.add_argument("--force", action="store_true", help="replace an existing certificate")
    args = parser.parse_args()
    cert, key = generate(out_dir=args.out, days=args.days, force=args.force)
    print(f"certificate: {cert}\nkey: {key}")


if __name__ == "__main__":
    main()
