#!/usr/bin/env python3
"""Regenerates the payload-key vectors in this directory with Keylime's own code.

Run with the Python of a Keylime 7.14.3 installation (the testbed's venv):

    /var/tmp/keylet-testbed/venv/bin/python shell/tests/data/payload/make_vectors.py

Writes:
  nk.pem        an RSA-2048 payload key (PKCS#8 PEM), the agent's NK
  vectors.json  U/V shares wrapped with keylime.crypto.rsa_encrypt (OAEP-SHA1),
                auth tags and /keys/verify HMACs from keylime.crypto.do_hmac,
                payloads from keylime.crypto.encrypt (AES-GCM, 16-byte IV) as
                keylime.cmd.user_data_encrypt and keylime_tenant make them
  cert_package.zip  a zip made the way keylime_tenant --cert --include makes it
"""

import base64
import io
import json
import os
import zipfile

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from keylime import crypto
from keylime.cmd import user_data_encrypt

HERE = os.path.dirname(os.path.abspath(__file__))
AGENT_ID = "c47a1b0e-5b8f-4a55-9b1e-0a4f0c2d7e11"
CHALLENGE = "Ab3dEf7hIj1lMn0pQr5t"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def main() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with open(os.path.join(HERE, "nk.pem"), "wb") as f:
        f.write(pem)
    public = key.public_key()

    # The zip keylime_tenant --cert builds: ZIP_STORED entries, plus --include files.
    sf = io.BytesIO()
    with zipfile.ZipFile(sf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("RevocationNotifier-cert.crt", "-----BEGIN CERTIFICATE-----\nnot a real one\n")
        zf.writestr("autorun.sh", "#!/bin/sh\necho ran > autorun-output\n")
        zf.writestr("hello.txt", "hello from the tenant\n")
    package = sf.getvalue()
    with open(os.path.join(HERE, "cert_package.zip"), "wb") as f:
        f.write(package)

    cases = []
    for name, plaintext in [
        ("file", b"secret configuration for the attested host\n"),
        ("empty", b""),
        ("zip", package),
    ]:
        enc = user_data_encrypt.encrypt(plaintext)
        cases.append(
            {
                "name": name,
                "k": b64(enc["k"]),
                "u": b64(enc["u"]),
                "v": b64(enc["v"]),
                "encrypted_u": b64(crypto.rsa_encrypt(public, enc["u"])),
                "encrypted_v": b64(crypto.rsa_encrypt(public, enc["v"])),
                "auth_tag": crypto.do_hmac(enc["k"], AGENT_ID),
                "payload": enc["ciphertext"].decode(),
                "plaintext": b64(plaintext),
                "verify_hmac": crypto.do_hmac(enc["k"], CHALLENGE),
            }
        )

    # AES-128 shares (16 bytes), which keylime's -k key files may carry.
    k16 = crypto.generate_random_key(16)
    v16 = crypto.generate_random_key(16)
    u16 = crypto.strbitxor(k16, v16)
    cases.append(
        {
            "name": "aes128",
            "k": b64(k16),
            "u": b64(u16),
            "v": b64(v16),
            "encrypted_u": b64(crypto.rsa_encrypt(public, u16)),
            "encrypted_v": b64(crypto.rsa_encrypt(public, v16)),
            "auth_tag": crypto.do_hmac(k16, AGENT_ID),
            "payload": crypto.encrypt(b"aes-128 payload", k16).decode(),
            "plaintext": b64(b"aes-128 payload"),
            "verify_hmac": crypto.do_hmac(k16, CHALLENGE),
        }
    )

    with open(os.path.join(HERE, "vectors.json"), "w", encoding="utf-8") as f:
        json.dump({"agent_id": AGENT_ID, "challenge": CHALLENGE, "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
