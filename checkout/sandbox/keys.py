"""RSA key pairs for TeemoPay in sandbox mode (1024-bit, as TeemoPay issues)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass(frozen=True)
class KeyPair:
    private_pem: bytes  # PKCS#8, unencrypted
    public_pem: bytes  # SubjectPublicKeyInfo


def generate_keypair(bits: int = 1024) -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(private_pem, public_pem)


def public_pem_of(private_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(private_pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass(frozen=True)
class TeemoPayKeyFiles:
    merchant_private: Path  # ours: signs requests (configured in the app)
    merchant_public: Path  # what a merchant uploads to TeemoPay (the sandbox reads it)
    platform_private: Path  # TeemoPay's: signs callbacks (only the sandbox has it)
    platform_public: Path  # TeemoPay's public key: verifies callbacks (configured in the app)


def ensure_teemopay_keys(directory: Path) -> TeemoPayKeyFiles:
    """Create both sandbox key pairs in `directory` unless they are already there."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TeemoPayKeyFiles(
        directory / "merchant_private.pem",
        directory / "merchant_public.pem",
        directory / "teemopay_private.pem",
        directory / "teemopay_public.pem",
    )
    for private, public in (
        (files.merchant_private, files.merchant_public),
        (files.platform_private, files.platform_public),
    ):
        if not private.exists() or not public.exists():
            pair = generate_keypair()
            private.write_bytes(pair.private_pem)
            private.chmod(0o600)
            public.write_bytes(pair.public_pem)
    return files
