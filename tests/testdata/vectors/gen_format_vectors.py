#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Provenance of the format/ signing-message vectors in this folder. Independent of the C++ code:
# Python's json module (json.dumps(..., separators=(',', ':'), ensure_ascii=False), which
# cryptotensors-format.md §3.1 states is identical to serde_json's compact output) and the
# `cryptography` package for Ed25519.
#
#   header_1_8.json             the §1.8 example header of cryptotensors-format.md, N bytes
#                               (one JSON line + space padding to a multiple of 8, no newline)
#   signing_message_1_8.txt     its §3.1 message; this script checks the §1.8 signature over it
#                               with x = 6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw=
#   signing_message_zero_size.txt, signing_message_escape.txt
#                               messages for the hand-built headers of signing_message_test.cc
#                               (ZERO_SIZE and ESCAPE below mirror them exactly)
#
# Usage: gen_format_vectors.py <path to cryptotensors-format.md> <output dir>
import base64
import json
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# CryptoTensors 0.2.3 dtype enum order (§1.1); FNUZ types sort after U64.
DT = ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16",
      "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64", "F8_E4M3FNUZ",
      "F8_E5M2FNUZ"]


def message(meta, tensors):
    """meta: list of (key, value) or None; tensors: list of (name, dtype, shape, b, e)."""
    msg = {}
    if meta is not None:
        msg["__metadata__"] = {k: v for k, v in sorted(meta, key=lambda kv: kv[0].encode("utf-8"))
                               if k != "__signature__"}
    for name, dtype, shape, b, e in sorted(
            tensors, key=lambda t: (t[3], t[4], -DT.index(t[1]), t[0].encode("utf-8"))):
        msg[name] = {"dtype": dtype, "shape": shape, "data_offsets": [b, e]}
    return json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


ZERO_SIZE = ([("format", "pt")],
             [("y", "I64", [0], 8, 8), ("b", "U8", [0], 0, 0), ("z", "U8", [1], 8, 9),
              ("c", "F32", [0], 0, 0), ("x", "F32", [2], 0, 8), ("a", "F32", [0], 0, 0),
              ("d", "BF16", [0, 3], 0, 0)])

ESCAPE = ([("format", "pt"),
           ("__signature__", "c2ln"),
           ("z\u00e9\u4e2d", "tab\there \"q\" back\\slash /slash \x01\x1f\x7f \u00e9 \U0001F600 "
                             "\b\f\n\r\x00 end"),
           ("A", "x"),
           ("\x1fctl", "v"),
           ("\u00e9", "accent"),
           ("e\u0301", "combining")],
          [("t\u00fc\n\"", "F16", [1], 0, 2), ("\u4e2d", "BF16", [], 2, 4)])


def main():
    doc, out = sys.argv[1], sys.argv[2]
    text = open(doc, encoding="utf-8").read()
    i = text.index('{"__metadata__":{"__crypto_keys__"')
    line = text[i:text.index("\n", i)]
    header = (line + " " * (-len(line) % 8)).encode("utf-8")
    h = json.loads(header)
    meta = h.pop("__metadata__")
    sig = base64.b64decode(meta["__signature__"], validate=True)
    msg = message(list(meta.items()),
                  [(n, t["dtype"], t["shape"], *t["data_offsets"]) for n, t in h.items()])
    x = base64.b64decode("6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw=", validate=True)
    Ed25519PublicKey.from_public_bytes(x).verify(sig, msg)  # raises InvalidSignature
    files = {"header_1_8.json": header, "signing_message_1_8.txt": msg,
             "signing_message_zero_size.txt": message(*ZERO_SIZE),
             "signing_message_escape.txt": message(*ESCAPE)}
    for name, data in files.items():
        with open(f"{out}/{name}", "wb") as f:
            f.write(data)
    print("§1.8 signature verified; wrote", ", ".join(files), file=sys.stderr)


if __name__ == "__main__":
    main()
