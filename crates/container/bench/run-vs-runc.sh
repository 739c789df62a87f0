#!/bin/sh
# run-vs-runc.sh [N] [STRATA]: the whole `strata run --rm busybox true` (store, snapshot,
# record, namespaces, cleanup) against `runc run` of `true` on the same busybox root
# filesystem, N times each (default 50); prints both medians in milliseconds. Needs root.
set -eu
n=${1:-50}
here=$(cd "$(dirname "$0")" && pwd)
strata=${2:-${CARGO_TARGET_DIR:-$here/../../../target}/release/strata}
[ -x "$strata" ] || { echo "build it first: cargo build --release -p strata-cli" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$here/../../../examples/busybox/make-rootfs" "$work/rootfs.tar"
export STRATA_ROOT="$work/root"
"$strata" import "$work/rootfs.tar" busybox >/dev/null
mkdir -p "$work/bundle/rootfs"
tar -xf "$work/rootfs.tar" -C "$work/bundle/rootfs"
(cd "$work/bundle" && runc spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"true"/' config.json)

now_ns() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]/1e6}'; }

i=0; : >"$work/strata.times"
while [ $i -lt "$n" ]; do
  t0=$(now_ns); "$strata" run --rm busybox true; t1=$(now_ns)
  echo $((t1 - t0)) >>"$work/strata.times"; i=$((i + 1))
done
i=0; : >"$work/runc.times"
while [ $i -lt "$n" ]; do
  t0=$(now_ns); runc --root "$work/runc-state" run -b "$work/bundle" "bench$i" >/dev/null; t1=$(now_ns)
  echo $((t1 - t0)) >>"$work/runc.times"; i=$((i + 1))
done
echo "strata run --rm busybox true: median $(median <"$work/strata.times") ms over $n"
echo "runc run (true, same rootfs):  median $(median <"$work/runc.times") ms over $n"
