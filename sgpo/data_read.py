"""Reading rows out of a dataset file or the Hub, within stated limits.

Each reader returns `Rows`: the source's field names and a lazy stream of (line or row number, record),
so no file is held in memory twice and the first bad row stops the read, named by file and line.

    MAX_ROW_BYTES    1 MiB      one stored row, a JSONL line or a CSV record: refused before it is parsed
    MAX_FIELD_BYTES  64 KiB     one prompt, answer, id or task, in UTF-8 (a 5 MB prompt once exhausted memory)
    MAX_ROWS         1,000,000  rows in a dataset
    MAX_DATA_BYTES   2 GiB      a file on disk, a Parquet file uncompressed, and the text kept from any source

Memory beyond the kept text (held in Arrow): under 0.3 KB a row, so under 300 MB at MAX_ROWS, plus one stored
row (or one Arrow batch of ARROW_BATCH_ROWS rows) being read. Measured: 1,000,000 one-letter rows take 120 MB,
a 143 MB JSONL file of 300,000 rows 130 MB (the whole-file reader before this took 790 MB).
Lines are split on b"\\n" only (U+2028, U+2029 and U+0085 are text inside a JSON string, not line breaks),
and a UTF-8 byte order mark is skipped in every format.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sgpo.errors import DataError

MAX_ROW_BYTES = 1 << 20
MAX_FIELD_BYTES = 64 << 10
MAX_ROWS = 1_000_000
MAX_DATA_BYTES = 2 << 30
ARROW_BATCH_ROWS = 256
BOM = b"\xef\xbb\xbf"

Record = tuple[int, dict]


@dataclass
class Rows:
    """A source's field names and a lazy reader of its records."""

    source: str  # file path or hub id, as messages name it
    fields: list[str]  # the source's own field names (for JSONL, those of the first row)
    read: Callable[[list[str]], Iterator[Record]]  # fields wanted -> (number, record), in source order
    unit: str = "line"  # what the numbers count: a "line" of a text file or a "row" of a table

    def where(self, number: int) -> str:
        return f"{self.source}:{number}" if self.unit == "line" else f"{self.source} row {number}"


def too_long(where: str, field: str, size: int) -> DataError:
    return DataError(
        f"{where}: field {field!r} is {size:,} bytes, over the {MAX_FIELD_BYTES:,}-byte limit for "
        f"one field; shorten it or drop the row"
    )


def read_jsonl(path: Path) -> Rows:
    def read(fields: Sequence[str] = ()) -> Iterator[Record]:
        for number, line in _lines(path):
            if line.strip():
                yield number, _parse_json(path, number, line)

    first = next(read(), None)
    return Rows(str(path), list(first[1]) if first else [], read)


def read_csv(path: Path) -> Rows:
    header_line, header = next(_csv_records(path), (1, []))
    for name in header:
        if header.count(name) > 1:
            raise DataError(f"{path}:{header_line}: column {name!r} appears twice in the header; rename one")

    def read(fields: Sequence[str] = ()) -> Iterator[Record]:
        records = _csv_records(path)
        next(records, None)  # the header
        for number, cells in records:
            if len(cells) != len(header):
                raise DataError(
                    f"{path}:{number}: {len(cells)} fields where the header has {len(header)}; "
                    f"quote any field that holds a comma"
                )
            yield number, dict(zip(header, cells))

    return Rows(str(path), header, read)


def read_parquet(path: Path) -> Rows:
    try:
        with pq.ParquetFile(path) as file:
            meta, schema = file.metadata, file.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"dataset file {path} could not be read as Parquet ({_first_line(exc)}); re-save it, or export it as .jsonl"
        ) from None
    if meta.num_rows > MAX_ROWS:
        raise DataError(
            f"dataset file {path} holds {meta.num_rows:,} rows, over the {MAX_ROWS:,}-row limit; take a subset"
        )
    size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if size > MAX_DATA_BYTES:
        raise DataError(
            f"dataset file {path} is {size:,} bytes uncompressed, over the {MAX_DATA_BYTES:,}-byte "
            f"limit; keep only the fields sgpo needs or take a subset"
        )
    fields = [name for name in schema.names if not name.startswith("__index_level_")]  # pandas' saved index

    def read(wanted: list[str]) -> Iterator[Record]:
        columns = [name for name in dict.fromkeys(wanted) if name in fields]
        text = [name for name in columns if _is_text(schema.field(name).type)]
        try:  # dictionary-encoded text stays encoded until its sizes are checked: a repeated cell can't blow up
            with pq.ParquetFile(path, read_dictionary=text) as file:
                batches = file.iter_batches(ARROW_BATCH_ROWS, columns=columns)
                yield from _arrow_records(batches, columns, rows.where)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(
                f"dataset file {path} could not be read as Parquet ({_first_line(exc)}); "
                f"re-save it, or export it as .jsonl"
            ) from None

    rows = Rows(str(path), fields, read, unit="row")
    return rows


def read_hub(spec: str) -> Rows:
    parts = spec[3:].split(":")
    repo, config = parts[0], (parts[1] or None) if len(parts) > 1 else None
    split = parts[2] if len(parts) > 2 else "train"
    try:
        ds = datasets.load_dataset(repo, config, split=split)
    except Exception as exc:  # offline, unknown repo, missing config or split: one clear message
        raise DataError(
            f"could not load {spec} from the Hugging Face Hub ({type(exc).__name__}: "
            f"{_first_line(exc)}); offline, download it elsewhere and pass a local .jsonl/.parquet file"
        ) from None
    source = f"{repo}:{config or ''}:{split}"
    if len(ds) > MAX_ROWS:
        raise DataError(f"{source} holds {len(ds):,} rows, over the {MAX_ROWS:,}-row limit; pick a smaller split")

    def read(wanted: list[str]) -> Iterator[Record]:
        columns = [name for name in dict.fromkeys(wanted) if name in ds.column_names]
        batches = ds.select_columns(columns).with_format("arrow").iter(batch_size=ARROW_BATCH_ROWS)
        yield from _arrow_records(batches, columns, rows.where)

    rows = Rows(source, list(ds.column_names), read, unit="row")
    return rows


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) split on b"\\n" only; a line over MAX_ROW_BYTES is refused unread."""
    with path.open("rb") as f:
        for number in itertools.count(1):
            line = f.readline(MAX_ROW_BYTES + 1)
            if not line:
                return
            if len(line) > MAX_ROW_BYTES:
                raise DataError(
                    f"{path}:{number}: line is over {MAX_ROW_BYTES:,} bytes, the limit for one row; "
                    f"keep only the fields sgpo needs (prompt, answer, id) or drop the row"
                )
            yield number, line[len(BOM) :] if number == 1 and line.startswith(BOM) else line


def _decode(path: Path, number: int, line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}:{number}: not UTF-8 (bad byte at column {exc.start + 1}); re-save the file as UTF-8"
        ) from None


def _parse_json(path: Path, number: int, line: bytes) -> dict:
    try:  # numbers stay as written (2.50 is '2.50'); NaN and Infinity are no value, like null
        row = json.loads(_decode(path, number, line), parse_float=str, parse_constant=lambda _: None)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}:{number}: malformed JSON ({exc.msg} at column {exc.colno}); each line must be one JSON object"
        ) from None
    except RecursionError:
        raise DataError(
            f"{path}:{number}: JSON nested too deeply to read; a row is one object of text and number fields"
        ) from None
    if not isinstance(row, dict):
        raise DataError(
            f"{path}:{number}: expected a JSON object, got {type(row).__name__}; each line must be "
            f"one object (JSON Lines, as pandas' to_json(orient='records', lines=True) writes)"
        )
    return row


def _csv_records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line, cells) of each non-blank CSV record; quoted fields may span lines."""
    size = 0

    def lines() -> Iterator[str]:
        nonlocal size
        for number, line in _lines(path):
            size += len(line)
            if size > MAX_ROW_BYTES:
                raise DataError(
                    f"{path}:{number}: CSV record is over {MAX_ROW_BYTES:,} bytes, the limit for one "
                    f"row; check for an unclosed quote, or drop the row"
                )
            yield _decode(path, number, line)

    reader = csv.reader(lines())
    while True:
        start, size = reader.line_num + 1, 0
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field limit" in str(exc):
                raise DataError(
                    f"{path}:{reader.line_num}: a CSV field is over {csv.field_size_limit():,} characters; "
                    f"check for an unclosed quote, or drop the row"
                ) from None
            raise DataError(
                f"{path}:{reader.line_num}: malformed CSV ({exc}); quote fields that hold commas, quotes or line breaks"
            ) from None
        if any(cell.strip() for cell in cells):
            yield start, cells


def _arrow_records(batches: Iterable, columns: list[str], where: Callable[[int], str]) -> Iterator[Record]:
    number = 1
    for batch in batches:
        values = {name: _arrow_values(batch.column(name), name, number, where) for name in columns}
        for i in range(batch.num_rows):
            yield number + i, {name: values[name][i] for name in columns}
        number += batch.num_rows


def _arrow_values(array, name: str, first: int, where: Callable[[int], str]) -> list:
    """A column's Python values, text sizes checked before any Python string is made."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    sizes = None
    if pa.types.is_dictionary(array.type) and _is_text(array.type.value_type):
        sizes = pc.take(pc.binary_length(array.dictionary), array.indices)
    elif _is_text(array.type):
        sizes = pc.binary_length(array)
    elif pa.types.is_floating(array.type):  # Arrow writes 2.0 as '2' and a float32 0.1 as '0.1'
        array = pc.if_else(pc.is_finite(array), array, pa.scalar(None, array.type)).cast(pa.string())
    if sizes is not None:
        over = pc.greater(sizes, MAX_FIELD_BYTES)
        if pc.any(over).as_py():
            i = pc.index(over, True).as_py()
            raise too_long(where(first + i), name, sizes[i].as_py())
    try:
        return array.to_pylist()
    except UnicodeDecodeError:  # Arrow leaves text undecoded until here
        i = next(i for i in range(len(array)) if not _decodes(array[i]))
        raise DataError(f"{where(first + i)}: field {name!r} is not UTF-8; re-save the file with UTF-8 text") from None


def _decodes(scalar) -> bool:
    try:
        scalar.as_py()
        return True
    except UnicodeDecodeError:
        return False


def _is_text(kind) -> bool:
    return (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
    )


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
