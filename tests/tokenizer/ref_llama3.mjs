// ref_llama3.mjs -- dump the LLaMA-3 vocabulary and merges of the npm package
// llama3-tokenizer-js into bitnet-mkvocab's text format, and encode the corpus with
// the package's encoder (the reference) into a cases file for bitnet-tokcompare.
//
// usage: node ref_llama3.mjs NODE_MODULES_DIR corpus.json OUT_SPEC OUT_CASES
// The vocabulary is written WITHOUT tokenizer.ggml.pre, like the official
// BitNet-b1.58-2B-4T GGUF, so libbitnet must recognise it as LLaMA-3's by itself.
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const [modDir, corpusPath, specPath, casesPath] = process.argv.slice(2);
const mod = await import(pathToFileURL(join(modDir, 'llama3-tokenizer-js', 'bundle',
                                            'llama3-tokenizer-with-baked-data.js')).href);
const tok = mod.default;
const hex = (s) => (s.length ? Buffer.from(s, 'utf8').toString('hex') : '-');

const vocab = tok.vocabById;
const lines = ['model gpt2', 'bos 128000', 'eos 128001', 'add_bos 1', `tokens ${vocab.length}`];
for (let i = 0; i < vocab.length; i++) lines.push(`${hex(vocab[i])} ${i >= 128000 ? 3 : 1} 0`);
const merges = [...tok.merges.entries()].sort((a, b) => a[1] - b[1]).map((e) => e[0]);
lines.push(`merges ${merges.length}`);
for (const m of merges) lines.push(hex(m));
writeFileSync(specPath, lines.join('\n') + '\n');

const corpus = JSON.parse(readFileSync(corpusPath, 'utf8'));
const out = corpus.map((t) => `${hex(t)}\t${tok.encode(t, { bos: false, eos: false }).join(' ')}`);
writeFileSync(casesPath, out.join('\n') + '\n');
console.log(`llama3: ${vocab.length} tokens, ${merges.length} merges, ${corpus.length} cases`);
