// ref_llama2.mjs -- dump the LLaMA-2 vocabulary of the npm package llama-tokenizer-js
// into bitnet-mkvocab's format (tokenizer.ggml.model = llama) and encode the corpus with
// the package's encoder into a cases file for bitnet-tokcompare.
//
// The package ships the vocabulary and Hugging Face's merge list, not SentencePiece
// scores.  Hugging Face derived that list from the scores (merges ordered by the score
// of the merged piece), so the score of a piece is recovered as -(rank of the first
// merge producing it).  Multi-character pieces no merge produces are marked UNUSED
// (never formed); single characters get score 0.
//
// usage: node ref_llama2.mjs NODE_MODULES_DIR corpus.json OUT_SPEC OUT_CASES
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const [modDir, corpusPath, specPath, casesPath] = process.argv.slice(2);
const mod = await import(pathToFileURL(join(modDir, 'llama-tokenizer-js', 'llama-tokenizer.js')).href);
const tok = mod.default;
const hex = (s) => (s.length ? Buffer.from(s, 'utf8').toString('hex') : '-');

const vocab = tok.vocabById;
const score = new Map();
for (const [m, prio] of tok.merges.entries()) {
    const r = m.replace(' ', '');
    if (!score.has(r) || score.get(r) < -prio) score.set(r, -prio);
}
const lines = ['model llama', 'bos 1', 'eos 2', 'unk 0', 'add_bos 1', `tokens ${vocab.length}`];
for (let i = 0; i < vocab.length; i++) {
    const s = vocab[i];
    let type = 1, sc = 0;
    if (i === 0) type = 2;
    else if (i <= 2) type = 3;
    else if (/^<0x[0-9A-F]{2}>$/.test(s)) type = 6;
    else if (score.has(s)) sc = score.get(s);
    else if (Array.from(s).length > 1) type = 5;
    lines.push(`${hex(s)} ${type} ${sc}`);
}
writeFileSync(specPath, lines.join('\n') + '\n');

const corpus = JSON.parse(readFileSync(corpusPath, 'utf8'));
const out = corpus.map((t) => `${hex(t)}\t${t.length ? tok.encode(t, false, true).join(' ') : ''}`);
writeFileSync(casesPath, out.join('\n') + '\n');
console.log(`llama2: ${vocab.length} tokens, ${tok.merges.size} merges, ${corpus.length} cases`);
