#!/bin/sh
# prune-node-modules.sh NODE_MODULES ARCH — keep only what a linux/ARCH container runs: onnxruntime-node's and
# sharp's binaries for linux/ARCH (glibc), no type declarations, source maps, Markdown or test folders.
# ARCH: Docker's TARGETARCH (amd64, arm64) or `uname -m` (x86_64, aarch64). Fails if a needed binary is missing.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 NODE_MODULES ARCH" >&2; exit 2; }
nm=$1
case $2 in
  amd64 | x86_64 | x64) arch=x64 ;;
  arm64 | aarch64) arch=arm64 ;;
  *) echo "prune-node-modules: onnxruntime-node has no linux binary for '$2'" >&2; exit 1 ;;
esac
[ -d "$nm/onnxruntime-node" ] || { echo "prune-node-modules: no $nm/onnxruntime-node" >&2; exit 1; }
before=$(du -sk "$nm" | cut -f1)

# onnxruntime-node: bin/napi-v*/<platform>/<arch>/ → keep linux/<arch> only.
for napi in "$nm"/onnxruntime-node/bin/napi-v*; do
  find "$napi" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +
  find "$napi/linux" -mindepth 1 -maxdepth 1 ! -name "$arch" -exec rm -rf {} +
done
# sharp: @img/sharp-<platform>-<arch> and @img/sharp-libvips-<platform>-<arch> → linux-<arch> (glibc) only;
# @img/colour is JavaScript.
find "$nm/@img" -mindepth 1 -maxdepth 1 ! -name colour ! -name "sharp-linux-$arch" ! -name "sharp-libvips-linux-$arch" -exec rm -rf {} +
# Files nothing loads at run time (licences stay).
find "$nm" -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name '*.md' \) -delete
find "$nm" -depth -type d \( -name test -o -name tests -o -name __tests__ \) -exec rm -rf {} +

# What must be left.
ls "$nm"/onnxruntime-node/bin/napi-v*/linux/"$arch"/onnxruntime_binding.node >/dev/null
ls "$nm"/onnxruntime-node/bin/napi-v*/linux/"$arch"/libonnxruntime.so* >/dev/null
ls "$nm/@img/sharp-linux-$arch"/lib/sharp-linux-"$arch"-*.node >/dev/null
ls "$nm/@img/sharp-libvips-linux-$arch"/lib/libvips-cpp.so* >/dev/null
echo "prune-node-modules: linux/$arch, $((before / 1024)) MB → $(( $(du -sk "$nm" | cut -f1) / 1024 )) MB"
