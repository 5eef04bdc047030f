# SPDX-License-Identifier: Apache-2.0
"""The KMIP broker's administrator, for tests/containers (run with the image's python3 and
python3-pykmip): `register NAME KEYFILE` stores the oct key of a JWK Set file as an active
AES key named NAME, readable by every client certificate of the server's CA; `revoke NAME`
marks it compromised (withdrawn)."""
import base64
import json
import sys

from kmip import enums
from kmip.pie import client, objects


def connect(certs):
    return client.ProxyKmipClient(hostname="127.0.0.1", port=int(sys.argv[2]),
                                  cert=f"{certs}/admin.crt", key=f"{certs}/admin.key",
                                  ca=f"{certs}/ca.crt", config_file="/dev/null")


def main():
    cmd, _port, certs, name = sys.argv[1:5]
    with connect(certs) as c:
        if cmd == "register":
            with open(sys.argv[5]) as f:
                oct_key = next(k for k in json.load(f)["keys"] if k["kty"] == "oct")
            value = base64.b64decode(oct_key["k"])
            key = objects.SymmetricKey(enums.CryptographicAlgorithm.AES, len(value) * 8, value,
                                       name=name)
            # PyKMIP lets only an object's owner (the CN of the client certificate that made
            # it) use it, unless its operation policy says otherwise: "ctfs-nodes" (the
            # server's policy file, written by the test) lets every client certificate of the
            # server's CA locate and get it, and only the owner activate, revoke or destroy it.
            key.operation_policy_name = "ctfs-nodes"
            uid = c.register(key)
            c.activate(uid)
        elif cmd == "revoke":
            attr = c.attribute_factory.create_attribute(enums.AttributeType.NAME, name)
            (uid,) = c.locate(attributes=[attr])
            c.revoke(enums.RevocationReasonCode.KEY_COMPROMISE, uid, "withdrawn by the test")
        else:
            sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
