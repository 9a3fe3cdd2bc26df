"""NIfTI brain images, read and written through nibabel (an optional dependency).

A 4-D recording and a 3-D mask become the time x voxel matrix the pipeline reads (the
mask's nonzero voxels, in C order); a 3-D label image or a 4-D stack of network maps
becomes templates over the same voxels; per-atom maps go back into images on the
recording's grid, NaN outside the mask, so that any viewer can overlay them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from ..filelimits import check_image_size
from .matching import templates_from_labels
from .stimulus import OrganizationError, read_utf8

NIFTI_SUFFIXES = (".nii", ".nii.gz")
AFFINE_TOLERANCE = 1e-3  # mm: images whose voxel-to-world matrices differ more are on different grids


def is_nifti(path: str | Path) -> bool:
    """True for a .nii or .nii.gz file name."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def _nibabel() -> ModuleType:
    """nibabel, or a clear error saying how to install it."""
    try:
        import nibabel
    except ImportError as exc:
        raise OrganizationError("NIfTI files need nibabel: pip install 'brillm-explorer[nifti]'") from exc
    return nibabel


def _load(path: Path, what: str) -> tuple[np.ndarray, np.ndarray]:
    """An image's voxel array and affine; unreadable files are an OrganizationError naming ``what``."""
    nib = _nibabel()
    try:
        image = nib.load(str(path))
        check_image_size(image.header.get_data_shape(), image.header.get_data_dtype().itemsize)
        return np.asarray(image.dataobj), np.asarray(image.affine, dtype=float)
    except FileNotFoundError as exc:
        raise OrganizationError(f"{what} file not found: {path}") from exc
    except (OSError, ValueError, EOFError, nib.filebasedimages.ImageFileError) as exc:
        raise OrganizationError(f"cannot read {what} {path}: {exc}") from exc
    except MemoryError as exc:
        raise OrganizationError(f"cannot read {what} {path}: it needs more memory than this machine has") from exc


@dataclass(frozen=True)
class VoxelGrid:
    """The voxels a mask selects on an image grid; maps over those voxels can be written back as images."""

    mask: np.ndarray  # bool, the grid's 3-D shape
    affine: np.ndarray  # 4 x 4 voxel-to-world matrix

    @property
    def n_voxels(self) -> int:
        """Voxels inside the mask."""
        return int(self.mask.sum())

    def select(self, volume: np.ndarray, affine: np.ndarray, what: str) -> np.ndarray:
        """The mask's voxels of a 3-D or 4-D image on this grid: (voxels,) or (voxels, volumes)."""
        if volume.shape[:3] != self.mask.shape or volume.ndim not in (3, 4):
            raise OrganizationError(f"{what} has shape {volume.shape}, not on the mask's grid {self.mask.shape}")
        if not np.allclose(affine, self.affine, atol=AFFINE_TOLERANCE):
            raise OrganizationError(f"{what} is on another grid than the mask (their affines differ)")
        return volume[self.mask]

    def image(self, maps: np.ndarray):  # -> nibabel.Nifti1Image
        """(n, voxels) maps as a 4-D float32 image on this grid, NaN outside the mask."""
        maps = np.atleast_2d(np.asarray(maps, dtype=np.float32))
        out = np.full((*self.mask.shape, maps.shape[0]), np.nan, dtype=np.float32)
        out[self.mask] = maps.T
        return _nibabel().Nifti1Image(out, self.affine)


def read_mask(path: Path) -> VoxelGrid:
    """A 3-D mask image: its nonzero voxels are the ones analysed."""
    data, affine = _load(path, "mask")
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise OrganizationError(f"mask {path} must be a 3-D image, got shape {data.shape}")
    mask = np.nan_to_num(data.astype(float)) != 0
    if not mask.any():
        raise OrganizationError(f"mask {path} selects no voxel")
    return VoxelGrid(mask, affine)


def read_recording(path: Path, grid: VoxelGrid) -> np.ndarray:
    """A 4-D recording as a (time x voxel) matrix over the mask's voxels."""
    data, affine = _load(path, "brain data")
    if data.ndim != 4:
        raise OrganizationError(f"brain data {path} must be a 4-D image (x, y, z, time), got shape {data.shape}")
    return grid.select(data, affine, f"brain data {path}").T.astype(float)


def read_label_names(path: Path) -> dict[int, str] | list[str]:
    """Network names: lines of "label name" give a lookup, plain lines name the labels in ascending order."""
    lines = [line.strip() for line in read_utf8(path).splitlines() if line.strip()]
    pairs = [line.split(None, 1) for line in lines]
    if pairs and all(len(p) == 2 and p[0].isdigit() for p in pairs):
        return {int(p[0]): p[1] for p in pairs}
    return lines


def read_template_image(path: Path, grid: VoxelGrid, names: dict[int, str] | list[str] | None) -> tuple[np.ndarray, list[str] | None]:
    """Templates from a 3-D integer label image (0 = no network) or a 4-D stack of network maps, over the mask's voxels."""
    data, affine = _load(path, "templates")
    values = grid.select(data, affine, f"templates {path}")
    if data.ndim == 4:
        return values.astype(float), list(names) if isinstance(names, list) else None
    if not np.all(np.isfinite(values)) or not np.all(np.mod(values, 1) == 0):
        raise OrganizationError(f"templates {path}: a 3-D template image must hold integer labels (0 = no network)")
    try:
        templates, found = templates_from_labels(values.astype(np.int64), names if isinstance(names, dict) else None)
    except ValueError as exc:
        raise OrganizationError(f"templates {path}: {exc} inside the mask") from exc
    return templates, list(names) if isinstance(names, list) else found


def write_maps(directory: Path, grid: VoxelGrid, maps: dict[str, np.ndarray]) -> list[Path]:
    """Each (n, voxels) map as ``directory/<name>.nii.gz``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, values in maps.items():
        paths.append(directory / f"{name}.nii.gz")
        _nibabel().save(grid.image(values), str(paths[-1]))
    return paths
