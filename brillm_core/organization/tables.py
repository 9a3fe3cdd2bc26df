"""Numeric matrices from files or from an upload's bytes: brain data and network templates.

One reader serves the CLI (paths) and the explorer (uploaded bytes), so both accept and
refuse exactly the same files: .npy (never pickled objects) or .csv/.tsv/.txt with an
optional header row of names.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from ..filelimits import check_csv_width, check_npy
from .matching import check_templates, templates_from_labels
from .stimulus import OrganizationError
from .volumes import VoxelGrid, is_nifti, read_label_names, read_template_image

MATRIX_SUFFIXES = (".npy", ".csv", ".tsv", ".txt")
Source = str | Path | bytes


def read_matrix(source: Source, name: str | Path, what: str) -> tuple[np.ndarray, list[str] | None]:
    """A numeric matrix and its header names (None without a header row) from a path or a file's
    bytes; ``name`` gives the format by its suffix. Empty cells are NaN; other text is a ValueError
    (its message leaves naming the file to the caller, which knows how the user called it)."""
    suffix = Path(name).suffix.lower()
    if suffix not in MATRIX_SUFFIXES:
        raise ValueError(f"{what} must be .npy or .csv/.tsv, got {suffix!r}")

    def opened():  # a fresh reader each time: bytes are read twice for the header check
        return io.BytesIO(source) if isinstance(source, bytes) else source

    if suffix == ".npy":
        check_npy(source)
        try:
            return np.load(opened(), allow_pickle=False), None
        except ValueError as exc:
            if "pickle" not in str(exc):
                raise
            raise ValueError("the file holds pickled Python objects, which are never loaded; save a numeric array") from exc
    sep = "\t" if suffix == ".tsv" else ","
    check_csv_width(source, sep)
    first = pd.read_csv(opened(), sep=sep, header=None, nrows=1).iloc[0]
    has_header = bool(pd.to_numeric(first, errors="coerce").isna().any() and first.notna().all())
    frame = pd.read_csv(opened(), sep=sep, header=0 if has_header else None)
    numeric = frame.apply(pd.to_numeric, errors="coerce")
    junk = numeric.isna() & frame.notna()
    if junk.values.any():
        r, c = np.argwhere(junk.values)[0]
        raise ValueError(f"non-numeric value {frame.iat[r, c]!r} at data row {r + 1}, column {c + 1}")
    return numeric.to_numpy(dtype=float), [str(c) for c in frame.columns] if has_header else None


def load_templates(source: Source, n_voxels: int, names_path: Path | None = None, grid: VoxelGrid | None = None,
                   name: str | Path | None = None) -> tuple[np.ndarray, list[str]]:
    """A (voxel x network) template matrix with names from a .npy/.csv matrix, a per-voxel integer
    label vector, or (with NIfTI brain data) a label image or a 4-D stack of network maps.
    ``source`` is a path or a file's bytes (then ``name`` gives the format)."""
    if name is None:
        if isinstance(source, bytes):
            raise TypeError("load_templates needs the file's name with its bytes")
        name = source
    label_names = read_label_names(names_path) if names_path else None
    if is_nifti(name):
        if grid is None or isinstance(source, bytes):
            raise OrganizationError(f"{name}: template images need NIfTI brain data and its --mask")
        values, names = read_template_image(Path(source), grid, label_names)
    else:
        try:
            values, names = read_matrix(source, name, "templates")
        except FileNotFoundError as exc:
            raise OrganizationError(f"templates file not found: {name}") from exc
        except (OSError, ValueError) as exc:
            raise OrganizationError(f"cannot read templates {name}: {exc}") from exc
        if np.isnan(values).any():
            raise OrganizationError(f"{name}: templates hold empty or non-numeric cells")
        if values.ndim == 2 and values.shape[1] == 1 and values.shape[0] == n_voxels:
            values = values[:, 0]
        labels = values.ndim == 1 and bool(np.all(np.mod(values, 1) == 0))
        if isinstance(label_names, dict) and not labels:
            raise OrganizationError(f"{names_path}: 'label name' lines apply to label templates only")
        if labels:
            values, names = templates_from_labels(values.astype(np.int64), label_names if isinstance(label_names, dict) else None)
        if isinstance(label_names, list):
            names = label_names
    try:
        return check_templates(values, n_voxels, names)
    except ValueError as exc:
        raise OrganizationError(f"{name}: {exc}") from exc
