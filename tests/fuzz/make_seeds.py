#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the seed corpus of every fuzz target from the frozen fixtures (tests/testdata),
config/example.yaml, the glob cases below and the small hand-written seeds in tests/fuzz/seeds/.
Standard library only; run by scripts/fuzz.sh at the start of each run, so no generated corpus
is committed.

Usage: make_seeds.py TESTDATA_DIR OUT_DIR   (OUT_DIR/<target>/ is created for each target)
"""
import hashlib
import json
import pathlib
import struct
import sys

FIXTURES = ["ref_v2_aes256", "ref_v1_aes256", "ref_v2_chacha_partial", "ref_v2_escapes",
            "ref_v2_zero_ties"]  # order = the fixture index of crypt_metadata_fuzzer.cc
SLOTS = ["__crypto_keys__", "__encryption__", "__policy__", "__signature__"]
# config_fuzzer creates this key file at startup; the example's key, user and group are
# replaced by ones that exist on any host, so that the seed is accepted.
CONFIG_KEY_FILE = "/tmp/ctfs-config-fuzzer/reader.jwk"
EXAMPLE_SUBSTITUTIONS = [("/etc/ctfs/llama.reader.jwk", CONFIG_KEY_FILE),
                         ("user: trainer", "user: root"), ("group: mlops", "group: root"),
                         ("group: [mlops]", "group: [root]")]
# glob_fuzzer inputs: (kPath?, pattern, text) -> kind byte, pattern, NUL, text.
GLOB_CASES = [
    (True, "*.json", "llama/config.json"), (True, "llama/*.json", "llama/x/config.json"),
    (True, "/llama/**/*.safetensors", "/llama/a/b/model.safetensors"),
    (True, "**", ""), (True, "a/**/b/**", "a/b"), (True, "/", "/"),
    (True, "/system.slice/*.service", "/system.slice/vllm.service"),
    (True, r"[!.]*/[a-z]?[\]]", "x/ab]"), (True, r"a\/b", "a/b"), (True, "*/", "a/"),
    (False, "model.layers.*", "model.layers.0.mlp/w"), (False, "*a*a*a*b", "a" * 40),
    (False, r"[^a-]\*?", "-*x"), (False, "[z-a]", "m"), (False, "pt_main*", "pt_main_thread"),
]


def header_json(data: bytes) -> bytes:
    (n,) = struct.unpack_from("<Q", data)
    return data[8:8 + n]


def main() -> int:
    testdata = pathlib.Path(sys.argv[1])
    out = pathlib.Path(sys.argv[2])
    hand = pathlib.Path(__file__).resolve().parent / "seeds"
    seeds: dict[str, list[bytes]] = {t: [] for t in (
        "base64", "strict_json", "jwk", "safetensors_header", "crypt_metadata", "plain_view",
        "open_file", "config", "glob", "embedded_policy", "pkcs11_uri")}

    encrypted = [(testdata / "encrypted" / f"{f}.safetensors").read_bytes() for f in FIXTURES]
    plain = sorted((testdata / "encrypted").glob("*.plain.safetensors")) + sorted(
        (testdata / "safetensors" / "valid").glob("*.safetensors"))
    plain = [p.read_bytes() for p in plain]
    keys_jwk = (testdata / "encrypted" / "keys.jwk").read_bytes()

    for data in encrypted + plain:
        seeds["safetensors_header"].append(data)
        seeds["plain_view"].append(data)
        seeds["strict_json"].append(header_json(data))
    seeds["open_file"] += encrypted + plain[:2]
    seeds["crypt_metadata"] += encrypted
    for index, data in enumerate(encrypted):
        meta = json.loads(header_json(data))["__metadata__"]
        for slot_index, slot in enumerate(SLOTS):
            value = meta[slot].encode()
            seeds["crypt_metadata"].append(bytes([index * 4 + slot_index]) + value)
            if slot != "__signature__":
                seeds["strict_json"].append(value)
        seeds["embedded_policy"].append(json.loads(meta["__policy__"])["local"].encode())
        seeds["base64"].append(meta["__signature__"].encode())
        for entry in json.loads(meta["__encryption__"]).values():
            seeds["base64"] += [v.encode() for v in entry.values()]
    seeds["jwk"].append(keys_jwk)
    seeds["strict_json"].append(keys_jwk)
    for key in json.loads(keys_jwk)["keys"]:
        seeds["jwk"].append(json.dumps(key).encode())
        seeds["base64"] += [key[m].encode() for m in ("k", "x", "d") if m in key]
    example = (pathlib.Path(__file__).resolve().parents[2] / "config" / "example.yaml").read_text()
    seeds["config"].append(example.encode())
    for old, new in EXAMPLE_SUBSTITUTIONS:
        example = example.replace(old, new)
    seeds["config"].append(example.encode())
    for path, pattern, text in GLOB_CASES:
        seeds["glob"].append(bytes([path]) + pattern.encode() + b"\0" + text.encode())
    for target in ("jwk", "strict_json", "base64", "config", "embedded_policy", "pkcs11_uri"):
        seeds[target] += [p.read_bytes() for p in sorted((hand / target).glob("*"))]

    for target, items in seeds.items():
        d = out / target
        d.mkdir(parents=True, exist_ok=True)
        for item in items:  # named by content, like libFuzzer's own corpus files
            (d / hashlib.sha1(item).hexdigest()).write_bytes(item)
        print(f"{target}: {len(set(items))} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
