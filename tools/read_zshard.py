#!/usr/bin/env python3
"""Read a Layerwise .zshard dataset without Layerwise: no dependencies beyond Python 3.

Decompression uses the `zstandard` module when it is installed and otherwise the `zstd`
command-line tool. Every header, index and block is checked with its CRC32C before its bytes
are trusted.

    python3 tools/read_zshard.py DIR --split train --count 5     # print records
    python3 tools/read_zshard.py DIR --verify                    # check every block and file hash

As a module:

    from read_zshard import Dataset
    for image, label in Dataset("fmnist").records("train"):
        ...   # image: bytes (HWC, as stored), label: int

The format (little-endian; see Sources/Shards/Format/ShardFormat.swift):
    header  skippable frame 0x184D2A5A: u32 "ZSHD", u16 version, u16 flags, u32 record size,
            u32 schema JSON length, schema JSON, u32 CRC32C of the payload before it
    blocks  one zstd frame per block of whole records (content size and checksum on)
    index   skippable frame 0x184D2A5B: per block {u64 offset, u32 compressed size,
            u32 uncompressed size, u32 records, u32 CRC32C of the frame}, then the 32-byte
            trailer {u64 index offset, u32 blocks, u32 largest block, u64 records,
            u32 CRC32C of the index body before it, u32 "ZSIX"}
"""

import argparse
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys

HEADER_FRAME_MAGIC = 0x184D2A5A
INDEX_FRAME_MAGIC = 0x184D2A5B
HEADER_MAGIC = 0x4448535A   # "ZSHD"
TRAILER_MAGIC = 0x5849535A  # "ZSIX"
TRAILER_SIZE = 32
ENTRY_SIZE = 24
FORMAT_VERSION = 1
TYPE_SIZES = {"uint8": 1, "int32": 4, "int64": 8, "float32": 4, "bfloat16": 2}
LABEL_FORMATS = {"uint8": "<B", "int32": "<i", "int64": "<q"}


class ShardError(Exception):
    """A fault in a shard or manifest; the message names the file, block and offset."""


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli), as in the shard format. Pure Python: about 10 MB/s."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


class _Decompressor:
    """One zstd frame -> bytes, through the `zstandard` module or the `zstd` CLI."""

    def __init__(self, backend="auto"):
        self.module = None
        if backend in ("auto", "module"):
            try:
                import zstandard  # optional
                self.module = zstandard.ZstdDecompressor()
            except ImportError:
                if backend == "module":
                    raise ShardError("the zstandard module is not installed (pip install zstandard)")
        if self.module is None:
            self.cli = shutil.which("zstd")
            if self.cli is None:
                raise ShardError("neither the zstandard module nor the zstd command-line tool is available")
        self.backend = "zstandard module" if self.module else "zstd CLI"

    def decompress(self, frame, size):
        if self.module is not None:
            return self.module.decompress(frame, max_output_size=size)
        run = subprocess.run([self.cli, "-d", "-c", "-q"], input=frame, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if run.returncode != 0:
            raise ValueError(run.stderr.decode(errors="replace").strip() or "zstd failed")
        return run.stdout


class Shard:
    """One .zshard file: header, index and trailer parsed and checked at open."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.data = f.read()
        d = self.data
        if len(d) < 8 + 20 + 8 + TRAILER_SIZE:
            raise ShardError(f"{path}: truncated: {len(d)} bytes is too small for a shard")
        # Header.
        frame_magic, payload = struct.unpack_from("<II", d, 0)
        if frame_magic != HEADER_FRAME_MAGIC:
            raise ShardError(f"{path}: bad magic at offset 0: 0x{frame_magic:08X}, expected 0x{HEADER_FRAME_MAGIC:08X}")
        if 8 + payload > len(d) or payload < 20:
            raise ShardError(f"{path}: the header frame size {payload} does not fit the file")
        magic, version, self.flags, self.record_size, json_len = struct.unpack_from("<IHHII", d, 8)
        if magic != HEADER_MAGIC:
            raise ShardError(f"{path}: bad header magic at offset 8: 0x{magic:08X}")
        (stored,) = struct.unpack_from("<I", d, 8 + payload - 4)
        computed = crc32c(d[8:8 + payload - 4])
        if stored != computed:
            raise ShardError(f"{path}: header CRC32C at offset 8 is 0x{computed:08X} but the header says 0x{stored:08X}")
        if version < 1 or version > FORMAT_VERSION:
            raise ShardError(f"{path}: format version {version}, this reader knows {FORMAT_VERSION}")
        if json_len != payload - 20:
            raise ShardError(f"{path}: schema length {json_len} does not fit the header frame of {payload} bytes")
        self.schema = json.loads(d[24:24 + json_len])
        self.blocks_start = 8 + payload
        # Trailer and index.
        t = len(d) - TRAILER_SIZE
        index_offset, count, self.largest_block, self.total_records, stored, magic = struct.unpack_from("<QIIQII", d, t)
        if magic != TRAILER_MAGIC:
            raise ShardError(f"{path}: no trailer: the last 4 bytes are not \"ZSIX\"")
        if index_offset != t - count * ENTRY_SIZE - 8 or index_offset < self.blocks_start:
            raise ShardError(f"{path}: the trailer's index offset {index_offset} and block count {count} do not fit a file of {len(d)} bytes")
        frame_magic, size = struct.unpack_from("<II", d, index_offset)
        if frame_magic != INDEX_FRAME_MAGIC or size != len(d) - index_offset - 8:
            raise ShardError(f"{path}: bad index frame at offset {index_offset}")
        computed = crc32c(d[index_offset + 8:len(d) - 8])
        if stored != computed:
            raise ShardError(f"{path}: index CRC32C at offset {index_offset} is 0x{computed:08X} but the trailer says 0x{stored:08X}")
        self.blocks = []  # (offset, compressed size, uncompressed size, records, crc)
        expected = self.blocks_start
        for i in range(count):
            entry = struct.unpack_from("<QIIII", d, index_offset + 8 + i * ENTRY_SIZE)
            offset, csize, usize, records, _ = entry
            if offset != expected or csize == 0 or offset + csize > index_offset or usize != records * self.record_size:
                raise ShardError(f"{path}: block {i} at offset {offset}: index entry is inconsistent")
            expected += csize
            self.blocks.append(entry)
        if expected != index_offset or sum(b[3] for b in self.blocks) != self.total_records:
            raise ShardError(f"{path}: the index does not add up to the trailer's totals")

    def block(self, i, decompressor):
        """The decoded bytes of block i, after its frame CRC32C and sizes are checked."""
        offset, csize, usize, records, crc = self.blocks[i]
        frame = self.data[offset:offset + csize]
        computed = crc32c(frame)
        if computed != crc:
            raise ShardError(f"{self.path}: block {i} at offset {offset}: frame CRC32C is 0x{computed:08X} but the index says 0x{crc:08X}")
        try:
            raw = decompressor.decompress(frame, usize)
        except Exception as e:  # zstd reports its own checksum and format errors
            raise ShardError(f"{self.path}: block {i} at offset {offset}: zstd: {e}")
        if len(raw) != usize:
            raise ShardError(f"{self.path}: block {i} at offset {offset}: decoded {len(raw)} bytes, the index says {usize}")
        return raw


class Dataset:
    """A dataset folder: manifest.json plus its shards."""

    def __init__(self, directory, backend="auto"):
        self.directory = directory
        path = os.path.join(directory, "manifest.json")
        try:
            with open(path, "rb") as f:
                self.manifest = json.load(f)
        except OSError as e:
            raise ShardError(f"{path}: {e.strerror}")
        if self.manifest.get("format") != "layerwise.zshard-dataset":
            raise ShardError(f"{path}: not a Layerwise dataset manifest")
        self.schema = self.manifest["schema"]
        self.decompressor = _Decompressor(backend)
        # Byte layout of a record: fields one after another.
        self.fields = {}
        offset = 0
        for field in self.schema["fields"]:
            size = TYPE_SIZES[field["type"]]
            for d in field["shape"]:
                size *= d
            self.fields[field["name"]] = (offset, size, field["type"])
            offset += size
        self.record_size = offset

    def open_shard(self, entry):
        """Opens a shard and checks it against its manifest entry."""
        shard = Shard(os.path.join(self.directory, entry["file"]))
        if shard.record_size != self.record_size or shard.total_records != entry["records"] or len(shard.blocks) != entry["blocks"]:
            raise ShardError(f"{shard.path}: disagrees with the manifest (records, blocks or record size)")
        return shard

    def shard_entries(self, split):
        splits = self.manifest["splits"]
        if split not in splits:
            raise ShardError(f"no split {split!r}; the dataset has {', '.join(sorted(splits))}")
        return splits[split]["shards"]

    def records(self, split="train"):
        """Yields (image bytes, label) for every record of `split`, in storage order."""
        image_offset, image_size, _ = self.fields["image"]
        label_offset, _, label_type = self.fields["label"]
        label_format = LABEL_FORMATS[label_type]
        for entry in self.shard_entries(split):
            shard = self.open_shard(entry)
            for b in range(len(shard.blocks)):
                raw = shard.block(b, self.decompressor)
                for r in range(len(raw) // self.record_size):
                    base = r * self.record_size
                    image = raw[base + image_offset:base + image_offset + image_size]
                    (label,) = struct.unpack_from(label_format, raw, base + label_offset)
                    yield image, label

    def verify(self):
        """Checks every shard's SHA-256 and every block; returns a list of faults."""
        faults = []
        for name in sorted(self.manifest["splits"]):
            for entry in self.shard_entries(name):
                try:
                    shard = self.open_shard(entry)
                except ShardError as e:
                    faults.append(str(e))
                    continue
                if hashlib.sha256(shard.data).hexdigest() != entry["sha256"]:
                    faults.append(f"{shard.path}: SHA-256 differs from the manifest's")
                for b in range(len(shard.blocks)):
                    try:
                        shard.block(b, self.decompressor)
                    except ShardError as e:
                        faults.append(str(e))
        return faults


def main():
    parser = argparse.ArgumentParser(description="Read records from a Layerwise .zshard dataset.")
    parser.add_argument("directory", help="dataset folder (holds manifest.json)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--count", type=int, default=10, help="records to print (default 10; 0: all)")
    parser.add_argument("--verify", action="store_true", help="check every block and file hash instead of printing")
    parser.add_argument("--backend", choices=["auto", "module", "cli"], default="auto",
                        help="zstd through the zstandard module, the zstd CLI, or whichever is there (default)")
    args = parser.parse_args()
    try:
        dataset = Dataset(args.directory, args.backend)
        if args.verify:
            faults = dataset.verify()
            for fault in faults:
                print("FAULT:", fault)
            print(f"{len(faults)} faults ({dataset.decompressor.backend})")
            return 1 if faults else 0
        for i, (image, label) in enumerate(dataset.records(args.split)):
            if args.count and i >= args.count:
                break
            print(f"#{i}  label {label}  image {image.hex(' ')}")
    except ShardError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
