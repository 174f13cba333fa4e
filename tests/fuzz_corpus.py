"""Make damaged and crafted variants of a backup, the same ones for the same seed.

    python tests/fuzz_corpus.py BACKUP OUTDIR [--seed 1] [--count 200]

writes OUTDIR/<number>-<mutation>.jsonl[.gz] for a backup file. The test suite
(tests/test_fuzz.py) makes the same variants in memory; nothing here is committed
as a blob. Each mutation takes the backup's decompressed lines and a
``random.Random`` and returns the bytes of a file:

* damage: truncation and bit flips, of the compressed or of the plain bytes, and
  line edits (drop, repeat, swap, garbage, a changed digit), compressed again;
* crafted: a structural rule of docs/format.md broken in a file whose end records
  and trailer are made to fit (``tests.backup_files.reseal``), so that only the
  rule itself can refuse it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.backup_files import reseal  # noqa: E402

Lines = list[bytes]
Mutation = Callable[[Lines, random.Random], bytes]


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)


def _sections(lines: Lines) -> list[tuple[int, int]]:
    """(table record index, end record index) of every section."""
    found, start = [], None
    for index, line in enumerate(lines):
        if line.startswith(b'{"kind":"table"'):
            start = index
        elif line.startswith(b'{"kind":"end"') and start is not None:
            found.append((start, index))
    return found


def _with_rows(lines: Lines) -> list[tuple[int, int]]:
    return [(s, e) for s, e in _sections(lines) if e > s + 1] or _sections(lines)


def _record(line: bytes) -> dict[str, Any]:
    return orjson.loads(line)


def _dump(value: Any) -> bytes:
    try:
        return orjson.dumps(value) + b"\n"
    except TypeError:  # integers beyond 64 bits
        return json.dumps(value, separators=(",", ":")).encode() + b"\n"


# -- damage: digests must catch it -----------------------------------------------


def truncate_compressed(lines: Lines, rng: random.Random) -> bytes:
    data = _gz(b"".join(lines))
    return data[: rng.randrange(len(data))]


def truncate_plain(lines: Lines, rng: random.Random) -> bytes:
    data = b"".join(lines)
    return data[: rng.randrange(len(data))]


def flip_compressed(lines: Lines, rng: random.Random) -> bytes:
    data = bytearray(_gz(b"".join(lines)))
    for _ in range(rng.randint(1, 3)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def flip_plain(lines: Lines, rng: random.Random) -> bytes:
    data = bytearray(b"".join(lines))
    for _ in range(rng.randint(1, 3)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return _gz(bytes(data)) if rng.random() < 0.5 else bytes(data)


def edit_lines(lines: Lines, rng: random.Random) -> bytes:
    lines = list(lines)
    index = rng.randrange(len(lines))
    action = rng.choice(["drop", "repeat", "swap", "garbage", "digit", "blank"])
    if action == "drop":
        del lines[index]
    elif action == "repeat":
        lines.insert(index, lines[index])
    elif action == "swap":
        other = rng.randrange(len(lines))
        lines[index], lines[other] = lines[other], lines[index]
    elif action == "garbage":
        lines.insert(index, rng.choice([b"garbage\n", b"[\n", b"{}\n", b"null\n"]))
    elif action == "blank":
        lines.insert(index, b"\n")
    else:
        line = lines[index]
        digits = [i for i, c in enumerate(line) if 48 <= c <= 57]
        if digits:
            at = rng.choice(digits)
            line = line[:at] + bytes([48 + (line[at] - 47) % 10]) + line[at + 1 :]
            lines[index] = line
    return _gz(b"".join(lines))


# -- crafted: resealed, so that only the structural rules can refuse it ----------


def drop_section(lines: Lines, rng: random.Random) -> bytes:
    start, end = rng.choice(_sections(lines))
    return reseal(lines[:start] + lines[end + 1 :])


def repeat_section(lines: Lines, rng: random.Random) -> bytes:
    start, end = rng.choice(_sections(lines))
    return reseal(lines[: end + 1] + lines[start : end + 1] + lines[end + 1 :])


def swap_sections(lines: Lines, rng: random.Random) -> bytes:
    sections = _sections(lines)
    (a, b), (c, d) = sorted(rng.sample(sections, 2))
    return reseal(lines[:a] + lines[c : d + 1] + lines[b + 1 : c] + lines[a : b + 1])


def rename_section(lines: Lines, rng: random.Random) -> bytes:
    lines = list(lines)
    start, end = rng.choice(_sections(lines))
    label = rng.choice(["nope.Model", "testapp.Nope", "", 7, None])
    for index in (start, end):
        record = _record(lines[index])
        record["label"] = label
        lines[index] = _dump(record)
    return reseal(lines)


def section_columns(lines: Lines, rng: random.Random) -> bytes:
    lines = list(lines)
    start, _ = rng.choice(_sections(lines))
    record = _record(lines[start])
    columns = record["columns"]
    change = rng.choice(["drop", "add", "reverse", "none"])
    if change == "drop":
        record["columns"] = columns[:-1]
    elif change == "add":
        record["columns"] = [*columns, "extra"]
    elif change == "reverse":
        record["columns"] = columns[::-1]
    else:
        del record["columns"]
    lines[start] = _dump(record)
    return reseal(lines)


def header_key(lines: Lines, rng: random.Random) -> bytes:
    header = _record(lines[0])
    key = rng.choice([k for k in header if k not in ("kind",)] + ["kind"])
    if rng.random() < 0.5:
        del header[key]
    else:
        header[key] = rng.choice([None, True, 1.0, "x", [], {}, [1], 2**70])
    return reseal([_dump(header), *lines[1:]])


def header_version(lines: Lines, rng: random.Random) -> bytes:
    header = _record(lines[0])
    header["version"] = rng.choice([True, 1.0, "1", 0, 2, -1, None, [1]])
    return reseal([_dump(header), *lines[1:]])


def header_tables(lines: Lines, rng: random.Random) -> bytes:
    header = _record(lines[0])
    tables = header["tables"]
    table = rng.choice(tables)
    change = rng.choice(
        ["drop", "pk", "columns", "column", "type", "dup", "label", "extra"]
    )
    if change == "drop":
        tables.remove(table)
    elif change == "pk":
        table["pk"] = rng.choice([[], ["nope"], "id", None])
    elif change == "columns":
        table["columns"] = rng.choice([[], None, ["id"]])
    elif change == "column":
        table["columns"].append({"name": "extra", "type": "CharField"})
    elif change == "type":
        table["columns"][0]["type"] = rng.choice(["TextField", 3, None])
    elif change == "dup":
        tables.append(dict(table))
    elif change == "label":
        table["label"] = rng.choice(["nope.Model", "", None])
    else:
        table["extra key"] = True  # unknown keys are allowed
    return reseal([_dump(header), *lines[1:]])


def header_lists(lines: Lines, rng: random.Random) -> bytes:
    header = _record(lines[0])
    key = rng.choice(["migrations", "exclude"])
    header[key] = [
        *header[key],
        rng.choice(["testapp.9999_fake", "nope", "nope.Model", "auth", 5]),
    ]
    return reseal([_dump(header), *lines[1:]])


def row_shape(lines: Lines, rng: random.Random) -> bytes:
    lines = list(lines)
    start, end = rng.choice(_with_rows(lines))
    if end == start + 1:
        lines.insert(end, b"[]\n")
        return reseal(lines)
    index = rng.randrange(start + 1, end)
    row = orjson.loads(lines[index])
    change = rng.choice(["short", "long", "empty", "nested", "object", "not json"])
    if change == "short":
        lines[index] = _dump(row[:-1])
    elif change == "long":
        lines[index] = _dump([*row, None])
    elif change == "empty":
        lines[index] = b"[]\n"
    elif change == "nested":
        row[rng.randrange(len(row))] = [1, [2]]
        lines[index] = _dump(row)
    elif change == "object":
        row[rng.randrange(len(row))] = {"a": 1}
        lines[index] = _dump(row)
    else:
        lines[index] = lines[index][:-2] + b",]\n"
    return reseal(lines)


def row_value(lines: Lines, rng: random.Random) -> bytes:
    lines = list(lines)
    start, end = rng.choice(_with_rows(lines))
    if end == start + 1:
        return reseal(lines)
    index = rng.randrange(start + 1, end)
    row = orjson.loads(lines[index])
    row[rng.randrange(len(row))] = rng.choice(
        [None, True, -1, 2**63, 1.5, "", "x" * 300, "2024-13-45", "NaN", "\x00"]
    )
    lines[index] = _dump(row)
    return reseal(lines)


def records(lines: Lines, rng: random.Random) -> bytes:
    lines = list(lines)
    change = rng.choice(["unknown", "after trailer", "end label", "trailer keys"])
    if change == "unknown":
        start, _ = rng.choice(_sections(lines))
        lines.insert(start, b'{"kind":"note"}\n')
    elif change == "after trailer":
        lines.append(rng.choice([lines[-1], b"[1]\n", b"\n"]))
    elif change == "end label":
        _, end = rng.choice(_sections(lines))
        record = _record(lines[end])
        record["label"] = "other.Label"
        lines[end] = _dump(record)
    else:
        # Unknown keys in the trailer are allowed: still a valid backup.
        record = _record(lines[-1])
        record["signature"] = "abc"
        lines[-1] = _dump(record)
    return reseal(lines)


DAMAGE: dict[str, Mutation] = {
    "truncate-gz": truncate_compressed,
    "truncate": truncate_plain,
    "flip-gz": flip_compressed,
    "flip": flip_plain,
    "lines": edit_lines,
}
CRAFTED: dict[str, Mutation] = {
    "drop-section": drop_section,
    "repeat-section": repeat_section,
    "swap-sections": swap_sections,
    "rename-section": rename_section,
    "section-columns": section_columns,
    "header-key": header_key,
    "header-version": header_version,
    "header-tables": header_tables,
    "header-lists": header_lists,
    "row-shape": row_shape,
    "row-value": row_value,
    "records": records,
}
MUTATIONS: dict[str, Mutation] = {**DAMAGE, **CRAFTED}


def cases(lines: Lines, seed: int, count: int) -> Iterator[tuple[str, bytes]]:
    """Yield ``count`` (name, file bytes), every mutation in turn, seeded."""
    names = sorted(MUTATIONS)
    for number in range(count):
        name = names[number % len(names)]
        rng = random.Random(f"{seed}-{number}")
        yield f"{number:04d}-{name}", MUTATIONS[name](lines, rng)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backup", type=Path)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    data = args.backup.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    args.outdir.mkdir(parents=True, exist_ok=True)
    for name, content in cases(data.splitlines(keepends=True), args.seed, args.count):
        suffix = ".jsonl.gz" if content[:2] == b"\x1f\x8b" else ".jsonl"
        (args.outdir / (name + suffix)).write_bytes(content)
    print(f"{args.count} files in {args.outdir}")


if __name__ == "__main__":
    main()
