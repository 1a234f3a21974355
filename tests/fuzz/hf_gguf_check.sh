#!/bin/sh
# hf_gguf_check.sh NPM_DIR CORPUS_DIR -- install @huggingface/gguf (pinned) into NPM_DIR
# if needed, then cross-check the writer's files with it (hf_gguf_check.mjs).  Exits 77
# (ctest: skipped) when node/npm or the package cannot be had.
set -u
npm_dir=$1
corpus=$2
here=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null 2>&1 || exit 77
if [ ! -d "$npm_dir/node_modules/@huggingface/gguf" ]; then
    command -v npm >/dev/null 2>&1 || exit 77
    mkdir -p "$npm_dir"
    (cd "$npm_dir" && npm install --no-audit --no-fund --silent @huggingface/gguf@0.4.6 >/dev/null 2>&1) || exit 77
fi
# resolve the package from npm_dir: run a copy of the script placed there
cp "$here/hf_gguf_check.mjs" "$npm_dir/hf_gguf_check.mjs"
exec node "$npm_dir/hf_gguf_check.mjs" "$corpus"
