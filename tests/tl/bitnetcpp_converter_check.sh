#!/bin/bash
# bitnetcpp_converter_check.sh BUILD_DIR WORK_DIR
#
# Files bitnet.cpp's own tools wrote: runs bitnet.cpp's converter
# (utils/convert-hf-to-gguf-bitnet.py --outtype tl1 / tl2) on a small 1bitLLM-layout
# checkpoint of the bitnet_b1_58-large shape (one layer, made by
# tests/convert/hfmodels.py), with the kernel configuration its setup script generates
# for that model, and checks that libbitnet's logits on both TL files are identical to
# each other and match bitnet-convert's I2_S conversion of the same checkpoint (the
# converters round the ternarization scale slightly differently: within 1e-4 of the
# largest logit).  Run by hand (not part of the suite):
#
#   apt-get install -y python3-torch python3-numpy python3-sentencepiece
#   BITNET_SRC=/path/to/microsoft/BitNet  GGUF_PY=/path/to/its-llama.cpp-fork/gguf-py \
#       tests/tl/bitnetcpp_converter_check.sh build /tmp/tlcheck
#
# BITNET_SRC: a checkout of microsoft/BitNet from before 2026-07-13 (the converter's
# BitnetModel stopped writing the scale tensors of TL files then; 3b04140).
# GGUF_PY: the gguf-py of its llama.cpp fork (Eddie-Wang1120/llama.cpp, merge-dev), which
# has the TL types.  There is no safetensors package on Debian 12, so a small module
# written here reads the checkpoint with hfmodels.py's reader.  Nothing of bitnet.cpp is
# copied into the repository.
set -euo pipefail
B=$(cd "${1:?build dir}" && pwd)
W=${2:?work dir}
S=${BITNET_SRC:?set BITNET_SRC}
G=${GGUF_PY:?set GGUF_PY}
T=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=/usr/bin/python3
rm -rf "$W" && mkdir -p "$W/conv/utils" "$W/conv/include" "$W/shim"
cp "$S/utils/convert-hf-to-gguf-bitnet.py" "$S/utils/convert.py" "$S/utils/codegen_tl1.py" "$S/utils/codegen_tl2.py" \
   "$W/conv/utils/"
cat > "$W/shim/safetensors.py" <<EOF
import sys, numpy as np, torch
sys.path.insert(0, "$T/convert")
import hfmodels
class safe_open:
    def __init__(self, path, framework="pt", device="cpu"): self.t = hfmodels.read_safetensors(str(path))
    def __enter__(self): return self
    def __exit__(self, *a): return False
    def keys(self): return list(self.t.keys())
    def get_tensor(self, name): return torch.from_numpy(np.ascontiguousarray(self.t[name]))
EOF
(cd "$T/convert" && $PY -c "import hfmodels; hfmodels.make_model('$W/hf', '1bitllm', seed=11, n_layer=1, n_embd=1536, n_ff=4096, n_head=16)")
cd "$W/conv"
# the configurations setup_env.py generates for bitnet_b1_58-large
$PY utils/codegen_tl1.py --model bitnet_b1_58-large --BM 256,128,256 --BK 128,64,128 --bm 32,64,32 >/dev/null
PYTHONPATH="$W/shim:$G:$W/conv/utils" $PY utils/convert-hf-to-gguf-bitnet.py "$W/hf" --outtype tl1 --outfile "$W/tl1.gguf" \
    >"$W/tl1.log" 2>&1
$PY utils/codegen_tl2.py --model bitnet_b1_58-large --BM 256,128,256 --BK 96,192,96 --bm 32,32,32 >/dev/null
PYTHONPATH="$W/shim:$G:$W/conv/utils" $PY utils/convert-hf-to-gguf-bitnet.py "$W/hf" --outtype tl2 --outfile "$W/tl2.gguf" \
    >"$W/tl2.log" 2>&1
# bitnet.cpp keeps the embedding in f32 unless --quant-embd: do the same
"$B/bin/bitnet-convert" "$W/hf" -o "$W/i2s.gguf" --embd-type f32 --force -q
for f in tl1 tl2 i2s; do
    "$B/bin/bn_ref_driver" logits "$W/$f.gguf" f32 2 "$W/$f.logits" 1 300 280 261 299 270
done
$PY - "$W" <<'EOF'
import sys, numpy as np
w = sys.argv[1]
a, b, c = (np.fromfile("%s/%s.logits" % (w, f), np.float32) for f in ("tl1", "tl2", "i2s"))
d = float(np.abs(a - c).max())
print("TL1 == TL2 (bit for bit): %s;  max |TL1 - I2_S| = %.3g of max |logit| %.3g" % (np.array_equal(a, b), d,
      float(np.abs(c).max())))
sys.exit(0 if np.array_equal(a, b) and d <= 1e-4 * max(1.0, float(np.abs(c).max())) else 1)
EOF
