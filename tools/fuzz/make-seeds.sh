#!/usr/bin/env bash
# Writes the fuzzers' starting corpus, tools/fuzz/seeds/TARGET/: small valid inputs of every
# format (plain and gzip), so the fuzzers start past the magic numbers. Needs python3 and a
# built layerwise (LAYERWISE_BIN, default .build/debug/layerwise) for the shard, manifest and
# checkpoint seeds. Run again only when a format changes; the seeds are committed.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${LAYERWISE_BIN:-.build/debug/layerwise}
seeds=tools/fuzz/seeds
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
rm -rf "$seeds"; mkdir -p "$seeds"/{shard,manifest,idx,cifar,npy,csv,safetensors,checkpoint}

python3 - "$seeds" "$work" <<'PY'
import gzip, json, struct, sys
seeds, work = sys.argv[1], sys.argv[2]

def pair(first, second):  # FuzzInput.split: u16 length of the first file, then both files
    return struct.pack('<H', len(first)) + first + second

def idx_images(n, h, w, c=None):
    dims = [n, h, w] + ([c] if c else [])
    body = bytes((i * 37 + j * 11) % 256 for i in range(n) for j in range(h * w * (c or 1)))
    return bytes([0, 0, 8, len(dims)]) + b''.join(struct.pack('>I', d) for d in dims) + body

def idx_labels(n, k=3):
    return bytes([0, 0, 8, 1]) + struct.pack('>I', n) + bytes(i % k for i in range(n))

def put(target, name, data):
    open(f'{seeds}/{target}/{name}', 'wb').write(data)

put('idx', 'plain', pair(idx_images(4, 3, 3), idx_labels(4)))
put('idx', 'rank4', pair(idx_images(3, 2, 2, 3), idx_labels(3)))
put('idx', 'gzip', pair(gzip.compress(idx_images(5, 4, 4), mtime=0), gzip.compress(idx_labels(5), mtime=0)))
put('idx', 'trailing', pair(idx_images(2, 2, 2) + b'\x01\x02', idx_labels(2) + b'\x07'))
put('idx', 'gzip-trailing', pair(gzip.compress(idx_images(2, 2, 2) + b'xyz', mtime=0), gzip.compress(idx_labels(2), mtime=0)))
# the tests' and the converters' IDX files for later use
open(f'{work}/images.idx', 'wb').write(idx_images(40, 4, 4))
open(f'{work}/labels.idx', 'wb').write(idx_labels(40))
open(f'{work}/images16.idx', 'wb').write(idx_images(8, 16, 16))
open(f'{work}/labels16.idx', 'wb').write(idx_labels(8))

for k, (lb, name) in enumerate([(1, 'cifar10'), (2, 'cifar100')]):
    rec = lambda i: bytes(range(i, i + lb)) + bytes((i * 7 + j) % 256 for j in range(3072))
    put('cifar', name, rec(1) + rec(2))

def npy(descr, shape, payload):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, ''.join(f'{d}, ' for d in shape).rstrip(' ') if len(shape) == 1 else ', '.join(map(str, shape)))
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + ' ' * pad + '\n'
    return b'\x93NUMPY\x01\x00' + struct.pack('<H', len(header)) + header.encode() + payload
put('npy', 'u8', pair(npy('|u1', (3, 2, 2), bytes(range(12))), npy('<i8', (3,), struct.pack('<3q', 0, 1, 2))))
put('npy', 'f32', pair(npy('<f4', (2, 3), struct.pack('<6f', *[0.5] * 6)), npy('<i4', (2, 1), struct.pack('<2i', 1, 0))))
put('npy', 'f64-rgb', pair(npy('<f8', (1, 2, 2, 3), struct.pack('<12d', *range(12))), npy('|u1', (1,), b'\x02')))

put('csv', 'plain', b'1,0.5,2,3,4\n0,1,1,1,1\n2,0,0,0,0.25\n')
put('csv', 'header', b'label,a,b,c,d\n3,1,2,3,4\n1,5,6,7,8\n')
put('csv', 'semicolon', b'0;1;2;3;4\n1;4;3;2;1\n')
open(f'{work}/small.csv', 'wb').write(b'label,a,b\n1,0.5,2\n0,1,1\n')

def safetensors(tensors, metadata):
    header, data, offset = {}, b'', 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [offset, offset + len(raw)]}
        data += raw; offset += len(raw)
    header['__metadata__'] = metadata
    h = json.dumps(header).encode()
    return struct.pack('<Q', len(h)) + h + data
put('safetensors', 'small', safetensors({'a.weight': ('F32', [2, 2], struct.pack('<4f', 1, 2, 3, 4)),
                                         'b': ('U8', [3], b'xyz'), 'c': ('I64', [], struct.pack('<q', 7))},
                                        {'layerwise.format': 'checkpoint/1'}))
PY

# A real dataset (shard and manifest) and a real checkpoint of a tiny MLP.
"$bin" shards convert idx --images "$work/images.idx" --labels "$work/labels.idx" --out "$work/ds" \
    --block-size 200 --no-shuffle --threads 1 >/dev/null
"$bin" shards convert csv "$work/small.csv" --out "$work/csv" --threads 1 >/dev/null
cp "$(ls "$work"/ds/train-*.zshard | head -1)" "$seeds/shard/idx-4x4"
[ -d "$work/csv" ] && cp "$(ls "$work"/csv/train-*.zshard | head -1)" "$seeds/shard/csv-float32"
cp "$work/ds/manifest.json" "$seeds/manifest/idx"
[ -f "$work/csv/manifest.json" ] && cp "$work/csv/manifest.json" "$seeds/manifest/csv"
"$bin" train --data "$work/ds" --test-split none --model mlp --num-layers 1 --num-hidden 4 --epochs 1 \
    --batch-size 8 --train-limit 16 --threads 1 --run "$work/run" >/dev/null
cp "$work/run/checkpoint.safetensors" "$seeds/safetensors/mlp-checkpoint"
cp "$work/run/checkpoint.safetensors" "$seeds/checkpoint/mlp"
# The smallest vgg8b there is (one channel per conv, 4 hidden units) on 16x16 images.
"$bin" shards convert idx --images "$work/images16.idx" --labels "$work/labels16.idx" --out "$work/ds16" --threads 1 >/dev/null
"$bin" train --data "$work/ds16" --test-split none --model vgg8b --feat-mult 0.001 --num-hidden 4 --epochs 1 \
    --batch-size 8 --threads 1 --run "$work/vgg" >/dev/null
cp "$work/vgg/checkpoint.safetensors" "$seeds/checkpoint/vgg8b"
du -sh "$seeds"/* && ls -l "$seeds"/*
