# SPDX-License-Identifier: Apache-2.0
"""The file's embedded policy (`__policy__.local`): ctfs decides as the reference does.

Every case is written THROUGH the reference package (`policy={"local": text}` in its serialize
config), so the module text is exactly what its writer stores; the reference's decision is then
taken live by loading the file with the package (regorus, `data.model.allow`, no input), and
`ctfs verify` and `ctfs decrypt` must decide the same:

* kind "exact": a constant module in ctfs's subset (policy/embedded_policy.h): ctfs allows iff
  the reference allows (exit 0), and a refusal is "denies access" (exit 6);
* kind "fail-closed": outside the subset: ctfs refuses with "unsupported" (exit 6) whatever the
  reference decides. Some of these the reference allows (it has a full Rego engine); that
  difference is the point: ctfs never opens a file whose policy it cannot evaluate.

Across all cases ctfs never allows what the reference refuses. `ref` in the table is what the
reference decided when the table was written; it is only a cross-check of the live decision
(a changed reference shows up as a failure naming the case).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cryptotensors.numpy import save_file as ref_save_np

from . import interop_util as U

EXIT_POLICY = 6  # cmd/exit_codes.h kExitPermissionDenied
P = "package model\n"

# (id, local module text, kind, the reference's decision when recorded)
CASES = [
    # Constant forms named by the issue.
    ("default", "package model\nallow = true", "exact", "allow"),
    ("eq-false", P + "allow = false", "exact", "deny"),
    ("assign-true", P + "allow := true", "exact", "allow"),
    ("assign-false", P + "allow := false", "exact", "deny"),
    ("default-false-alone", P + "default allow := false", "exact", "deny"),
    ("default-eq-true", P + "default allow = true", "exact", "allow"),
    ("default-false-if-true", P + "default allow := false\nallow if { true }", "exact", "allow"),
    ("if-false-body", P + "allow if { false }", "exact", "deny"),
    ("old-syntax", P + "allow { true }", "exact", "deny"),
    ("old-syntax-future-if", P + "import future.keywords.if\nallow { true }", "exact", "deny"),
    ("if-true", P + "allow if true", "exact", "allow"),
    ("non-boolean", P + "allow = 1", "fail-closed", "deny"),
    ("string-value", P + "allow = \"true\"", "fail-closed", "deny"),
    ("null-value", P + "allow = null", "fail-closed", "deny"),
    ("import-v1", P + "import rego.v1\nallow = true", "exact", "allow"),
    ("import-v1-if", P + "import rego.v1\nallow if true", "exact", "allow"),
    ("import-future", P + "import future.keywords\nallow if true", "exact", "allow"),
    ("import-future-if-in", P + "import future.keywords.if\nimport future.keywords.in\nallow if true",
     "exact", "allow"),
    ("comments", "# c\npackage model\n# c2\nallow = true # trailing", "exact", "allow"),
    ("comment-in-body", P + "allow if { # c\n true\n}", "exact", "allow"),
    ("spaces", "  package   model  \n\n\n allow=true  ", "exact", "allow"),
    ("tabs", "package    model\t\nallow\t:=\ttrue", "exact", "allow"),
    ("crlf", "package model\r\nallow = true\r\n", "exact", "allow"),
    ("crlf-body", P + "allow if {\r\n true\r\n}\r\n", "exact", "allow"),
    ("no-blanks", P + "allow:=true", "exact", "allow"),
    ("trailing-newline-false", P + "allow = false\n", "exact", "deny"),
    ("other-package", "package cryptotensors\nallow = true", "exact", "deny"),
    ("sub-package", "package model.x\nallow = true", "exact", "deny"),
    ("package-only", "package model", "exact", "deny"),
    ("empty-module", "", "fail-closed", "deny"),
    ("input-rule", P + "allow if input.user == \"x\"", "fail-closed", "deny"),
    ("input-body", P + "allow if { input.user == \"x\" }", "fail-closed", "deny"),
    ("input-with-default-true", P + "default allow := true\nallow if input.user == \"x\"",
     "fail-closed", "allow"),
    ("time-builtin", P + "default allow := false\nallow if time.now_ns() > 0", "fail-closed",
     "allow"),
    # Bodies and several rules.
    ("body-two-true", P + "allow if { true\n true }", "exact", "allow"),
    ("body-semicolons", P + "allow if {true;true}", "exact", "allow"),
    ("body-true-false", P + "allow if { true; false }", "exact", "deny"),
    ("body-multiline", P + "allow if {\n  true\n  true\n}", "exact", "allow"),
    ("value-if", P + "allow = false if true", "exact", "deny"),
    ("assign-value-if-false", P + "allow := true if { false }", "exact", "deny"),
    ("default-true-if-false", P + "default allow := true\nallow if { false }", "exact", "allow"),
    ("default-true-assign-false", P + "default allow := true\nallow := false", "exact", "deny"),
    ("two-true", P + "allow = true\nallow = true", "exact", "allow"),
    ("conflict", P + "allow = true\nallow = false", "exact", "deny"),
    ("conflict-if", P + "allow if true\nallow = false if true", "exact", "deny"),
    ("undefined-false-rule", P + "allow if true\nallow = false if false", "exact", "allow"),
    ("true-and-undefined", P + "allow if { true }\nallow if { false }", "exact", "allow"),
    ("default-after-rule", P + "allow if { false }\ndefault allow := true", "exact", "allow"),
    # Outside the subset, including forms the reference accepts.
    ("two-defaults", P + "default allow := true\ndefault allow := false", "fail-closed", "allow"),
    ("empty-body", P + "allow if { }", "fail-closed", "allow"),
    ("one-line-module", "package model allow = true", "fail-closed", "allow"),
    ("split-rule", P + "allow =\ntrue", "fail-closed", "allow"),
    ("semicolon-package", "package model; allow = true", "fail-closed", "deny"),
    ("other-rule", P + "allow := true\nx := 1", "fail-closed", "allow"),
    ("not-false", P + "allow if not false", "fail-closed", "allow"),
    ("else", P + "allow if { true } else = false", "fail-closed", "allow"),
    ("import-input", P + "import input\nallow if true", "fail-closed", "allow"),
    ("import-twice", P + "import rego.v1\nimport rego.v1\nallow = true", "fail-closed", "deny"),
    ("capital-true", P + "allow = True", "fail-closed", "deny"),
    ("lone-cr", "package model\rallow = true", "fail-closed", "deny"),
    ("bom", "\ufeffpackage model\nallow = true", "fail-closed", "deny"),
    ("vertical-tab", P + "allow = true\x0b", "fail-closed", "deny"),
    ("nbsp", P + "allow\u00a0= true", "fail-closed", "deny"),
    ("nul", P + "allow = true\x00", "fail-closed", "allow"),
]


def _tensors():
    return {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(3, dtype=np.float16)}


def ref_decision(path: Path, reader_config: dict) -> tuple[str, str]:
    """('allow'|'deny', detail) from loading `path` with the reference package."""
    try:
        U.ref_load_np(path, reader_config)
    except Exception as exc:  # the package raises SafetensorError subclasses
        msg = str(exc)
        assert "Policy" in msg, f"the reference failed for another reason than its policy: {msg}"
        return "deny", msg
    return "allow", ""


def ctfs_decision(ctfs, tmp_path: Path, path: Path, keyfile: Path) -> tuple[str, str]:
    """('allow'|'deny', stderr) from `ctfs verify`, checked to agree with `ctfs decrypt`."""
    v = ctfs.run("verify", path, "--key", keyfile)
    out = tmp_path / (path.stem + ".plain.safetensors")
    d = ctfs.run("decrypt", path, out, "--key", keyfile)
    for r in (v, d):
        assert r.returncode in (0, EXIT_POLICY), "neither allowed nor refused by policy:\n" + (
            f"{r.args}\nexit {r.returncode}\n{r.stderr}")
    assert v.returncode == d.returncode, f"verify and decrypt disagree:\n{v.stderr}\n{d.stderr}"
    if d.returncode == 0:
        U.assert_raw_equal(U.stock_load_raw(out), U.expected_raw(U.specs_from_np(_tensors())),
                           f"decrypt {path.name}")
        return "allow", ""
    assert not out.exists(), "a refused decrypt left an output file"
    return "deny", v.stderr


def write_through_reference(path: Path, keys, policy: dict | None) -> dict:
    cfg = json.loads(json.dumps(keys.config))
    if policy is not None:
        cfg["policy"] = policy
    ref_save_np(_tensors(), str(path), config=cfg)
    _, h, _, _ = U.read_header(path)
    return json.loads(h["__metadata__"]["__policy__"])


@pytest.mark.parametrize("case_id,text,kind,recorded", CASES, ids=[c[0] for c in CASES])
def test_same_decision_as_reference(ctfs, py_keys, tmp_path, case_id, text, kind, recorded):
    keys = py_keys()
    path = tmp_path / f"{case_id}.safetensors"
    stored = write_through_reference(path, keys, {"local": text})
    assert stored["local"] == text, "the reference writer changed the module text"

    ref, ref_detail = ref_decision(path, keys.reader_config)
    assert ref == recorded, (f"the reference now decides {ref} (recorded: {recorded}) for "
                             f"{text!r}: {ref_detail}")
    got, stderr = ctfs_decision(ctfs, tmp_path, path, keys.path)

    assert not (got == "allow" and ref == "deny"), f"ctfs allows what the reference refuses: {text!r}"
    if kind == "exact":
        assert got == ref, f"{text!r}: reference {ref} ({ref_detail}), ctfs {got}: {stderr}"
        if got == "deny":
            assert "embedded policy denies access" in stderr, stderr
    else:
        assert got == "deny", f"{text!r}: ctfs opened a module outside its subset"
        assert "unsupported embedded Rego policy" in stderr, stderr
        assert "line " in stderr, f"the refusal does not name the line: {stderr}"
        assert all(ch >= " " for ch in stderr.rstrip("\n")), f"control bytes in: {stderr!r}"


@pytest.mark.parametrize("policy", [None, {}, {"remote": P + "allow = false"},
                                    {"local": P + "allow = true", "remote": "garbage((("}],
                         ids=["no-policy", "empty-dict", "remote-only", "remote-garbage"])
def test_writer_defaults(ctfs, py_keys, tmp_path, policy):
    """What the writer stores when the user gives no (or no local) policy; remote never counts."""
    keys = py_keys()
    path = tmp_path / "m.safetensors"
    stored = write_through_reference(path, keys, policy)
    assert stored["local"] == "package model\nallow = true"
    ref, detail = ref_decision(path, keys.reader_config)
    got, stderr = ctfs_decision(ctfs, tmp_path, path, keys.path)
    assert ref == "allow", detail
    assert got == ref, stderr
