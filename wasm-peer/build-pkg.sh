#!/usr/bin/env bash
# Builds the segswarm-wasm npm package into wasm-peer/pkg/: the wasm module (cargo, profile
# wasm-release, target wasm32-unknown-unknown), its wasm-bindgen glue (--target web), wasm-opt -Oz
# when installed, the hand-written hls.js glue and TypeScript types from wasm-peer/js/, and
# package.json. Prints the gzipped sizes. Usage: wasm-peer/build-pkg.sh  (from anywhere)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"
export PATH="$PATH:$HOME/.cargo/bin"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
out="$here/pkg"

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -qF "$wb_version"; then
  cargo install --locked wasm-bindgen-cli --version "$wb_version" \
    || cargo install --force wasm-bindgen-cli --version "$wb_version"
fi

cargo build -p segswarm-wasm --target wasm32-unknown-unknown --profile wasm-release
rm -rf "$out"
mkdir -p "$out"
wasm-bindgen --target web --remove-name-section --remove-producers-section --out-dir "$out" --out-name segswarm_wasm \
  "$target_dir/wasm32-unknown-unknown/wasm-release/segswarm_wasm.wasm"
# The generated glue ships without its comments (~2 KB gzipped): JSDoc copied from the Rust docs,
# which segswarm_wasm.d.ts keeps with the types, and wasm-bindgen's notes on its closure shims.
# wasm-bindgen writes each comment on lines of its own (a `/**` line through the line ending in
# `*/`, or `//` lines), so whole lines are dropped; `node --check` vets the result when node is here.
awk '/^[[:space:]]*\/\*\*/ { doc = 1 }
     !doc && !/^[[:space:]]*\/\// { print }
     doc && /\*\/[[:space:]]*$/ { doc = 0 }' "$out/segswarm_wasm.js" > "$out/glue.js"
mv "$out/glue.js" "$out/segswarm_wasm.js"
if command -v node >/dev/null 2>&1; then
  node --check "$out/segswarm_wasm.js"
fi
# wasm-opt (binaryen >= 116 reads the reference-types ops rustc emits; Debian 12's 108 does not) is
# kept only when it makes the gzipped module smaller (on this crate -Oz shrinks the raw module
# but grows it gzipped).
if command -v wasm-opt >/dev/null 2>&1; then
  if wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-mutable-globals --enable-reference-types --enable-multivalue \
      "$out/segswarm_wasm_bg.wasm" -o "$out/opt.wasm" 2>/dev/null \
    && [ "$(gzip -9 -c "$out/opt.wasm" | wc -c)" -lt "$(gzip -9 -c "$out/segswarm_wasm_bg.wasm" | wc -c)" ]; then
    mv "$out/opt.wasm" "$out/segswarm_wasm_bg.wasm"
    echo "wasm-opt -Oz applied"
  else
    rm -f "$out/opt.wasm"
    echo "wasm-opt not applied (failed, or no gzipped gain)"
  fi
fi
cp "$here/js/segswarm.js" "$here/js/segswarm.d.ts" "$out/"
version=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
cat > "$out/package.json" <<JSON
{
  "name": "segswarm",
  "version": "$version",
  "description": "P2P segment delivery for hls.js: the segswarm engine as a wasm module, compatible with p2p-media-loader 2.3 swarms",
  "license": "MIT OR Apache-2.0",
  "type": "module",
  "main": "segswarm.js",
  "module": "segswarm.js",
  "types": "segswarm.d.ts",
  "files": ["segswarm.js", "segswarm.d.ts", "segswarm_wasm.js", "segswarm_wasm.d.ts", "segswarm_wasm_bg.wasm", "segswarm_wasm_bg.wasm.d.ts"],
  "sideEffects": false,
  "peerDependencies": { "hls.js": ">=1.5" }
}
JSON

wasm="$out/segswarm_wasm_bg.wasm"
size() { wc -c < "$1" | tr -d ' '; }
gz() { gzip -9 -c "$@" | wc -c | tr -d ' '; }
echo "pkg: $out"
echo "wasm $(size "$wasm") B (gzip $(gz "$wasm")), glue $(size "$out/segswarm_wasm.js") B (gzip $(gz "$out/segswarm_wasm.js")), hls.js glue $(size "$out/segswarm.js") B (gzip $(gz "$out/segswarm.js"))"
echo "gzipped total (wasm + wasm-bindgen glue + hls.js glue, one stream): $(cat "$wasm" "$out/segswarm_wasm.js" "$out/segswarm.js" | gzip -9 | wc -c | tr -d ' ') B"
