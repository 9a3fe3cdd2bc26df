"""What a data file claims about its size, checked before it is parsed: a few bytes can claim gigabytes.

A .npy header names a shape that must be exactly what follows it; a CSV file's width is counted
on its first line (parsing a 600 KB file of 100,000 columns took 28 s and 400 MB); an image's
header names a shape whose data must fit ``MAX_IMAGE_BYTES`` (a 1.4 MB .nii.gz expanded to
1.4 GB). Each check raises ValueError with what the file claims and the limit.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import BinaryIO

import numpy as np

MAX_CSV_COLUMNS = 4096
MAX_CSV_FIRST_LINE_BYTES = 4 * 2**20  # 4,096 column names of up to 1 KB each
MAX_IMAGE_BYTES = 2**30  # a recording of 1 GiB as stored (a 64 x 64 x 40 x 300 int16 run is about 100 MB)


def _opened(source: bytes | str | Path) -> BinaryIO:
    """A reader over a file's bytes or its path."""
    return io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")


def check_npy(source: bytes | str | Path) -> None:
    """ValueError unless the .npy header's shape and dtype describe exactly the bytes after the header (a file
    without the .npy magic string is left to ``numpy.load``, which refuses it)."""
    with _opened(source) as handle:
        if handle.read(len(np.lib.format.MAGIC_PREFIX)) != np.lib.format.MAGIC_PREFIX:
            return
        handle.seek(0)
        version = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(handle)
        start = handle.tell()
        end = handle.seek(0, io.SEEK_END)
    claimed = math.prod(shape) * dtype.itemsize
    if claimed != end - start:
        raise ValueError(f"the .npy header claims an array of shape {shape} ({claimed:,} bytes of {dtype}), but the file "
                         f"holds {end - start:,} bytes of data")


def check_csv_width(source: bytes | str | Path, separator: str) -> None:
    """ValueError when the first line of a CSV file has more than ``MAX_CSV_COLUMNS`` columns (or no end
    within ``MAX_CSV_FIRST_LINE_BYTES``)."""
    with _opened(source) as handle:
        first = handle.readline(MAX_CSV_FIRST_LINE_BYTES + 1)
    if len(first) > MAX_CSV_FIRST_LINE_BYTES:
        raise ValueError(f"the first line is longer than {MAX_CSV_FIRST_LINE_BYTES // 2**20} MB; save wide data as .npy")
    columns = first.count(separator.encode()) + 1
    if columns > MAX_CSV_COLUMNS:
        raise ValueError(f"the file has {columns:,} columns; text tables are read with at most {MAX_CSV_COLUMNS:,}: "
                         "save wider data as .npy")


def check_image_size(shape: tuple[int, ...], itemsize: int) -> None:
    """ValueError when an image whose header names ``shape`` would hold more than ``MAX_IMAGE_BYTES`` of data."""
    size = math.prod(int(n) for n in shape) * itemsize
    if size > MAX_IMAGE_BYTES:
        raise ValueError(f"its header claims {' x '.join(map(str, shape))} voxels ({size:,} bytes), more than the "
                         f"{MAX_IMAGE_BYTES // 2**30} GiB an image may hold here")
