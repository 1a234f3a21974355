// pretok_ref.mjs -- the reference for libbitnet's hand-written pre-tokenizer matchers:
// the regexes themselves, run by JavaScript's backtracking engine (the semantics of the
// Oniguruma regexes Hugging Face tokenizers and llama.cpp use: leftmost alternative,
// greedy quantifiers, lookahead), each match a piece and the unmatched gaps kept.
//
//   node pretok_ref.mjs NAME CORPUS.json OUT_HEX_LINES OUT_ENDS
//
// The regexes are llama.cpp's (src/llama-vocab.cpp), written for JavaScript: (?i:...) as
// the explicit case classes llama.cpp uses, \s as \p{White_Space}.
import { readFileSync, writeFileSync } from 'node:fs';

const S = '\\p{White_Space}';
const CONTR_CI = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const RX = {
  'llama-bpe': `${CONTR_CI}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^${S}\\p{L}\\p{N}]+[\\r\\n]*|${S}*[\\r\\n]+|${S}+(?!\\P{White_Space})|${S}+`,
  'qwen2': `${CONTR_CI}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^${S}\\p{L}\\p{N}]+[\\r\\n]*|${S}*[\\r\\n]+|${S}+(?!\\P{White_Space})|${S}+`,
  'gpt2': `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${S}\\p{L}\\p{N}]+|${S}+(?!\\P{White_Space})|${S}+`,
};
const [name, corpusPath, hexPath, endsPath] = process.argv.slice(2);
const re = new RegExp(RX[name], 'gu');
const corpus = JSON.parse(readFileSync(corpusPath, 'utf8'));
// extra cases for the rules that differ: digit runs, contractions, spaces before digits
corpus.push('2026 12345 1234567 0.125 ١٢٣٤ ⅠⅡⅢ x1y22z333', "I'LL 'S 've 'Ve", '  42\n\n  7 ', '\t\t3\r\n4');
const hex = [], ends = [];
for (const t of corpus) {
  hex.push(Buffer.from(t, 'utf8').toString('hex'));
  const cps = [...t];            // code points
  const e = [];
  let last = 0;                  // in UTF-16 units
  const cpAt = (u) => [...t.slice(0, u)].length;
  for (const m of t.matchAll(re)) {
    if (m.index > last) e.push(cpAt(m.index));  // the gap before the match
    e.push(cpAt(m.index + m[0].length));
    last = m.index + m[0].length;
  }
  if (last < t.length) e.push(cps.length);
  ends.push(e.join(' '));
}
writeFileSync(hexPath, hex.join('\n') + '\n');
writeFileSync(endsPath, ends.join('\n') + '\n');
