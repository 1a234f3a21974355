// hf_gguf_check.mjs -- cross-check files written by libbitnet's GGUF writer with an
// independent reader, the @huggingface/gguf npm package:
//
//     node hf_gguf_check.mjs DIR      (DIR holds fuzz_gen_corpus output)
//
// Checks the metadata of meta.gguf value by value, and for every tensors*.gguf that
// the tensor offsets are exactly what upstream ggml's writer produces (running sum of
// sizes padded to the alignment), computed here from ggml's block sizes, and that the
// file ends where the last padded tensor ends.
import { gguf } from "@huggingface/gguf";
import { statSync } from "node:fs";

const dir = process.argv[2];
let failures = 0;
function check(cond, what) {
    if (!cond) {
        console.error("FAIL: " + what);
        failures++;
    }
}

// ggml type id -> [elements per block, bytes per block]
const BLOCK = { 0: [1, 4], 1: [1, 2], 2: [32, 18], 8: [32, 34], 12: [256, 144], 14: [256, 210],
                30: [1, 2], 34: [256, 54], 35: [256, 66] };
function nbytes(t) {
    const n = t.shape.reduce((a, b) => a * b, 1n);
    if (t.dtype === 36) return n / 4n + 32n; // I2_S: 2-bit codes + 32-byte tail with the scale
    const [bl, sz] = BLOCK[t.dtype];
    return (n / BigInt(bl)) * BigInt(sz);
}

const meta = (await gguf(`${dir}/meta.gguf`, { allowLocalFile: true })).metadata;
const want = {
    "general.architecture": "bitnet-b1.58", "t.u8": 7, "t.i8": -3, "t.u16": 513, "t.i16": -513, "t.u32": 2560,
    "t.i32": -1, "t.bool": true, "t.u64": 1099511627776n, "t.i64": -1099511627776n, "t.f64": 10000,
    "t.str": "a\tb\0c\u20ac", "tokenizer.ggml.model": "llama",
};
check(meta.version === 3, "version 3");
for (const [k, v] of Object.entries(want)) check(meta[k] === v, `${k} = ${meta[k]}, want ${v}`);
check(Math.fround(meta["t.f32"]) === Math.fround(1e-5), "t.f32");
check(JSON.stringify(meta["tokenizer.ggml.tokens"]) === JSON.stringify(["<s>", "</s>", "\u2581the", "\u0120a", ""]),
      "tokens");
check(JSON.stringify(meta["tokenizer.ggml.scores"]) === JSON.stringify([0, 0, -1.5, -2.5, -3]), "scores");
check(JSON.stringify(meta["a.nested"]) === "[[1,2],[]]", "nested array");
check(JSON.stringify(meta["a.nested_str"]) === '[["x"]]', "nested string array");
check(JSON.stringify(meta["a.empty"]) === "[]", "empty array");

for (const name of ["tensors.gguf", "tensors_align64.gguf", "tensors_align1.gguf"]) {
    const path = `${dir}/${name}`;
    const r = await gguf(path, { allowLocalFile: true });
    const align = BigInt(r.metadata["general.alignment"] ?? 32);
    check(r.tensorDataOffset % align === 0n, `${name}: data offset ${r.tensorDataOffset} aligned to ${align}`);
    let off = 0n;
    for (const t of r.tensorInfos) {
        check(t.offset === off, `${name}: tensor ${t.name} at ${t.offset}, want ${off}`);
        const sz = nbytes(t);
        off += (sz + align - 1n) / align * align;
    }
    check(r.tensorInfos.length === 10, `${name}: 10 tensors`);
    check(BigInt(statSync(path).size) === r.tensorDataOffset + off, `${name}: file size`);
}
if (failures) process.exit(1);
console.log("hf_gguf_check: ok");
