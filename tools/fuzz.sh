#!/usr/bin/env bash
# libFuzzer harnesses for every parser of outside bytes, built straight from the module sources
# with swiftc (-sanitize=fuzzer,address), outside SwiftPM.
#
#   tools/fuzz.sh                      list the targets
#   tools/fuzz.sh build [TARGET...]    build the harnesses (all by default) into $FUZZ_BUILD
#   tools/fuzz.sh TARGET [SECONDS]     build TARGET, then fuzz it for SECONDS (default 60), starting
#                                      from tools/fuzz/seeds/TARGET; new inputs go to a scratch
#                                      corpus, crashes to $FUZZ_BUILD/artifacts/TARGET/
#   tools/fuzz.sh all [SECONDS]        every target in turn, SECONDS each (tools/fuzz-ci.sh: 60)
#
# Exit status is non-zero when a harness finds a crash, hang, leak or sanitizer report; the
# reproducer is kept and its path printed (replay: $FUZZ_BUILD/TARGET ARTIFACT).
set -euo pipefail
cd "$(dirname "$0")/.."

# Where the sources of each module under test live; change here when a folder moves.
SHARDS_DIR=Sources/Shards                        # every .swift below it is one module, Shards
# The IDX, CIFAR, NPY and CSV readers: their own module, built as module Converters after
# Shards (the harnesses import it when it exists).
CONVERTERS_DIR=Sources/Converters
# Swift modules built before Shards and after it (Sources/<name>), in dependency order;
# Training holds the safetensors reader and the checkpoint loader.
DEPENDENCY_MODULES="MemoryLedger Randomness FileSystem"
UPPER_MODULES="Tensors Layers Reports Training"
C_TARGETS="CKernels CDNNL"                        # our C targets: Sources/<name>/*.c with include/*.h
C_MODULE_MAPS="-I Sources/CZstd -I Sources/CZlib -I Sources/CBLAS"
C_LIBRARIES="-lzstd -lz -lopenblas -ldnnl -lm"

FUZZ_BUILD=${FUZZ_BUILD:-.build-fuzz}
HARNESS_DIR=tools/fuzz
SEED_DIR=tools/fuzz/seeds
TARGETS="shard manifest idx cifar npy csv safetensors checkpoint"
SWIFTC=${SWIFTC:-swiftc}
SANITIZE="-sanitize=fuzzer,address"
OPT="-O"   # bounds and overflow checks stay on in -O; -Ounchecked would hide the bugs we look for

sources() { find "$@" -name '*.swift' | LC_ALL=C sort; }

# Builds Sources/$1 (or the folders in $3) as module $1 into $FUZZ_BUILD/modules, once per change.
build_module() {
    local name=$1 deps=$2; shift 2
    local dirs=("$@"); [ ${#dirs[@]} -gt 0 ] || dirs=("Sources/$name")
    local out=$FUZZ_BUILD/modules files stamp
    mkdir -p "$out"
    files=$(sources "${dirs[@]}")
    stamp=$(cat $files | sha256sum | cut -c1-16)
    if [ -f "$out/$name.stamp" ] && [ "$(cat "$out/$name.stamp")" = "$stamp" ] && [ -f "$out/$name.o" ]; then return; fi
    echo "fuzz: building module $name" >&2
    # -enable-testing: the harnesses reach internal parsers with @testable import.
    # shellcheck disable=SC2086
    $SWIFTC $OPT $SANITIZE -enable-testing -parse-as-library -wmo -package-name Layerwise -module-name "$name" \
        -I "$out" $(for c in $C_TARGETS; do echo "-I $out/$c"; done) $C_MODULE_MAPS -emit-module -emit-module-path "$out/$name.swiftmodule" \
        -c $files -o "$out/$name.o"
    echo "$stamp" > "$out/$name.stamp"
}

# Compiles our C target $1 (instrumented too) and writes a module map for its headers.
build_c_target() {
    local name=$1 out=$FUZZ_BUILD/modules src=Sources/$1 stamp
    mkdir -p "$out/$name"
    stamp=$(cat "$src"/*.c "$src"/include/*.h | sha256sum | cut -c1-16)
    if [ -f "$out/$name.stamp" ] && [ "$(cat "$out/$name.stamp")" = "$stamp" ] && ls "$out/$name"-*.o >/dev/null 2>&1; then return; fi
    echo "fuzz: building C target $name" >&2
    # Every header in the module, every source file into its own object ($name-<file>.o).
    { printf 'module %s {\n' "$name"
      for h in "$src"/include/*.h; do printf '    header "%s"\n' "$PWD/$h"; done
      printf '    export *\n}\n'; } > "$out/$name/module.modulemap"
    rm -f "$out/$name.o" "$out/$name"-*.o
    local c
    for c in "$src"/*.c; do
        ${CLANG:-clang} -O2 -fsanitize=address,fuzzer-no-link -I "$src/include" -c "$c" -o "$out/$name-$(basename "$c" .c).o"
    done
    echo "$stamp" > "$out/$name.stamp"
}

build_dependencies() {
    for c in $C_TARGETS; do build_c_target "$c"; done
    for m in $DEPENDENCY_MODULES; do build_module "$m" ""; done
    build_module Shards "" "$SHARDS_DIR"
    case $CONVERTERS_DIR in
        "$SHARDS_DIR"/*) ;;
        *) build_module Converters "" "$CONVERTERS_DIR" ;;
    esac
    for m in $UPPER_MODULES; do build_module "$m" ""; done
}

build_target() {
    local target=$1 harness=$HARNESS_DIR/$1.swift out=$FUZZ_BUILD/$1
    [ -f "$harness" ] || { echo "fuzz: no harness $harness (targets: $TARGETS)" >&2; exit 2; }
    if [ "$out" -nt "$harness" ] && [ "$out" -nt "$HARNESS_DIR/FuzzInput.swift" ] \
        && [ -z "$(find "$FUZZ_BUILD/modules" -name '*.o' -newer "$out")" ]; then return; fi
    echo "fuzz: building harness $target" >&2
    local objects
    objects=$(ls "$FUZZ_BUILD"/modules/*.o)
    # shellcheck disable=SC2086
    $SWIFTC $OPT $SANITIZE -parse-as-library -package-name Layerwise -module-name "Fuzz_$target" -I "$FUZZ_BUILD/modules" \
        $(for c in $C_TARGETS; do echo "-I $FUZZ_BUILD/modules/$c"; done) $C_MODULE_MAPS \
        "$harness" "$HARNESS_DIR/FuzzInput.swift" $objects $C_LIBRARIES -use-ld=lld -o "$out"
}

run_target() {
    local target=$1 seconds=$2
    local corpus=$FUZZ_BUILD/corpus/$target artifacts=$FUZZ_BUILD/artifacts/$target
    mkdir -p "$corpus" "$artifacts"
    echo "fuzz: $target for ${seconds}s (seeds $SEED_DIR/$target)" >&2
    # -timeout: an input that takes over 10 s is a hang; -rss_limit_mb / -malloc_limit_mb: a
    # header that makes a parser allocate gigabytes is a finding too.
    local status=0 scratch
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/layerwise-fuzz-$target.XXXXXX")   # the harness writes each input here
    # SWIFT_BACKTRACE: libFuzzer prints the stack itself; Swift's backtracer would linger after a crash.
    SWIFT_BACKTRACE=enable=no FUZZ_SCRATCH=$scratch "$FUZZ_BUILD/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -malloc_limit_mb=1024 -max_len=65536 -print_final_stats=1 -artifact_prefix="$artifacts/" \
        "$corpus" "$SEED_DIR/$target" || status=$?
    rm -rf "$scratch"
    if [ $status -ne 0 ]; then
        echo "fuzz: $target FAILED (status $status); reproducers:" >&2
        ls -1 "$artifacts" >&2
    fi
    return $status
}

case "${1:-}" in
    "" | -h | --help) sed -n '2,13p' "$0"; echo "targets: $TARGETS"; exit 0 ;;
    build)
        shift
        build_dependencies
        for t in ${@:-$TARGETS}; do build_target "$t"; done ;;
    all)
        seconds=${2:-60}
        build_dependencies
        for t in $TARGETS; do build_target "$t"; done
        failed=""
        for t in $TARGETS; do run_target "$t" "$seconds" || failed="$failed $t"; done
        [ -z "$failed" ] || { echo "fuzz: findings in:$failed" >&2; exit 1; } ;;
    *)
        build_dependencies
        build_target "$1"
        run_target "$1" "${2:-60}" ;;
esac
