"""Decoding images and volumes into numpy arrays.

* :func:`read_image`: PNG / JPEG (Pillow), any bit depth, grey (uint8 kept as is).
* :func:`read_dicom`: DICOM via pydicom: modality LUT (rescale slope / intercept), VOI LUT
  or window, and MONOCHROME1 inversion, so bright is always dense.
* :func:`read_nifti`: NIfTI CT volume via nibabel, in Hounsfield units (the header's
  scaling applied), axes ``(x, y, z)`` as stored.
* :func:`hu_window`: clip to a (level, width) window and scale to [0, 1].
* :func:`volume_slices`: evenly spaced axial slices of a volume, windowed, as uint8.

Every unreadable file raises :class:`~compendium.errors.InputError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataNotFoundError, InputError

#: Lung-relevant HU window (level, width) used for CTPA slices unless a model says otherwise.
LUNG_WINDOW = (-600.0, 1500.0)
#: Mediastinal / CT-angiography window.
MEDIASTINUM_WINDOW = (40.0, 400.0)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
DICOM_SUFFIXES = (".dcm", ".dicom", "")
NIFTI_SUFFIXES = (".nii", ".nii.gz")


def _exists(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"image file not found: {path}")
    return path


def read_image(path: str | Path) -> np.ndarray:
    """A PNG/JPEG/TIFF as a 2-D array: uint8 for 8-bit files, else float32 (colour images
    are converted to grey)."""
    from PIL import Image, UnidentifiedImageError

    path = _exists(path)
    try:
        with Image.open(path) as im:
            if im.mode in ("RGB", "RGBA", "P", "CMYK", "LA"):
                im = im.convert("L")
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"cannot read image {path}: {exc}") from None
    if arr.ndim != 2:
        raise InputError(f"cannot read image {path}: expected a 2-D grey image, got shape {arr.shape}")
    # 8-bit files keep their values (no contrast stretch); deeper ones become float32
    # and are min-max scaled when converted to uint8.
    return arr if arr.dtype == np.uint8 else arr.astype(np.float32)


def read_dicom(path: str | Path, *, voi_lut: bool = True) -> np.ndarray:
    """A DICOM image as float32, display-ready: larger values are brighter (denser).

    Steps: pixel data -> modality LUT (``RescaleSlope`` / ``RescaleIntercept``) -> VOI LUT
    or ``WindowCenter``/``WindowWidth`` when present and ``voi_lut`` -> inversion when
    ``PhotometricInterpretation`` is ``MONOCHROME1`` (where low values are white).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    path = _exists(path)
    try:
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array
    except (InvalidDicomError, AttributeError, ValueError, RuntimeError, OSError, KeyError) as exc:
        raise InputError(f"cannot read DICOM {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    arr = apply_modality_lut(arr, ds).astype(np.float64)
    if voi_lut and ("VOILUTSequence" in ds or "WindowCenter" in ds):
        arr = np.asarray(apply_voi_lut(arr, ds), dtype=np.float64)
    if str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        arr = arr.max() + arr.min() - arr
    return arr.astype(np.float32)


def read_nifti(path: str | Path) -> np.ndarray:
    """A NIfTI volume as float32 (Hounsfield units for CT: header scaling applied)."""
    import nibabel as nib

    path = _exists(path)
    try:
        img = nib.load(str(path))
        arr = np.asarray(img.get_fdata(dtype=np.float32))
    except Exception as exc:  # nibabel raises many types for broken files
        raise InputError(f"cannot read NIfTI {path}: {str(exc).splitlines()[0]}") from None
    if arr.ndim == 4 and arr.shape[3] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        raise InputError(f"cannot read NIfTI {path}: expected a 3-D volume, got shape {arr.shape}")
    return arr


def read_pixels(path: str | Path) -> np.ndarray:
    """Dispatch on the file suffix: images, DICOM (also suffix-less files), NIfTI."""
    name = Path(path).name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return read_nifti(path)
    if name.endswith(IMAGE_SUFFIXES):
        return read_image(path)
    return read_dicom(path)


def standardise_cxr(image: str | Path | np.ndarray, *, size: int = 1024,
                    zscore: bool = True) -> np.ndarray:
    """A chest radiograph prepared as Paper D's section 2.2 describes, float32 (size, size).

    The file is read with :func:`read_pixels` (DICOM: pydicom, the modality LUT from the
    manufacturer's ``RescaleSlope``/``RescaleIntercept``, MONOCHROME1 inverted to
    MONOCHROME2), scaled to [0, 1] by its own minimum and maximum, resized to ``size`` x
    ``size`` (bilinear; the paper: 1024 for CXR-Foundation) and, with ``zscore``, standardised
    to mean 0 and standard deviation 1.  An array is taken as already read.

    >>> x = standardise_cxr(np.arange(64, dtype=float).reshape(8, 8), size=4)
    >>> x.shape, round(float(x.mean()), 6), round(float(x.std()), 6)
    ((4, 4), 0.0, 1.0)
    """
    from PIL import Image

    arr = read_pixels(image) if isinstance(image, (str, Path)) else np.asarray(image, float)
    if arr.ndim != 2:
        raise InputError(f"standardise_cxr needs one grey image, got shape {arr.shape}")
    if not isinstance(size, (int, np.integer)) or size < 2:
        raise InputError(f"size must be an integer >= 2, got {size!r}")
    lo, hi = float(np.min(arr)), float(np.max(arr))
    unit = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr, dtype=float)
    out = np.asarray(Image.fromarray(unit.astype(np.float32), mode="F")
                     .resize((int(size), int(size)), Image.BILINEAR), dtype=np.float32)
    if zscore:
        sd = float(out.std())
        out = (out - out.mean()) / (sd if sd > 0 else 1.0)
    return out.astype(np.float32)


def hu_window(volume: np.ndarray, level: float, width: float) -> np.ndarray:
    """Clip Hounsfield units to ``[level - width/2, level + width/2]`` and scale to [0, 1].

    >>> hu_window(np.array([-2000., -600., 150.]), -600, 1500).round(3).tolist()
    [0.0, 0.5, 1.0]
    """
    if width <= 0:
        raise InputError(f"HU window width must be positive, got {width}")
    lo = level - width / 2.0
    return np.clip((np.asarray(volume, dtype=np.float32) - lo) / float(width), 0.0, 1.0)


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """Min-max scale a 2-D array to uint8 (a constant image becomes zeros)."""
    arr = np.asarray(arr, dtype=np.float32)
    lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    return np.round((arr - lo) / (hi - lo) * 255.0).astype(np.uint8)


def resize_uint8(arr: np.ndarray, size: int) -> np.ndarray:
    """Scale to uint8 and resize to ``size x size`` (bilinear, aspect not preserved,
    as torchxrayvision's and most CXR pipelines' square resize)."""
    from PIL import Image

    img = arr if arr.dtype == np.uint8 else to_uint8(arr)
    if img.shape == (size, size):
        return img
    return np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR), dtype=np.uint8)


def volume_slices(volume: np.ndarray, *, n_slices: int | None = None,
                  window: tuple[float, float] = LUNG_WINDOW, axis: int = 2) -> np.ndarray:
    """Axial slices of a CT volume, HU-windowed to uint8: ``(n, H, W)``.

    ``n_slices`` evenly spaced slices (all slices when None), rotated so that the
    anatomical anterior is up for the usual RAS-stored volumes.
    """
    vol = np.moveaxis(np.asarray(volume, dtype=np.float32), axis, 0)
    if n_slices is not None:
        if n_slices < 1:
            raise InputError(f"n_slices must be positive, got {n_slices}")
        idx = np.unique(np.linspace(0, vol.shape[0] - 1, n_slices).round().astype(int))
        vol = vol[idx]
    win = hu_window(vol, *window)
    return np.round(np.rot90(win, axes=(1, 2)) * 255.0).astype(np.uint8)


def read_ct_volume(path: str | Path) -> np.ndarray:
    """A CT volume in Hounsfield units, float32, axial slices along the **last** axis.

    A NIfTI file (``.nii``/``.nii.gz``: header scaling applied, as stored, usually RAS) or a
    folder holding one DICOM series (the modality LUT of each slice gives HU; slices ordered
    by ``ImagePositionPatient`` z, else ``InstanceNumber``; no VOI window).
    """
    p = Path(path)
    if not p.exists():
        raise DataNotFoundError(f"CT volume not found: {p}")
    if p.is_file():
        if not p.name.lower().endswith(NIFTI_SUFFIXES):
            raise InputError(f"{p}: a CT volume is a NIfTI file or a folder of DICOM slices")
        return read_nifti(p)
    import pydicom

    files = sorted(q for q in p.iterdir() if q.is_file() and not q.name.startswith("."))
    if not files:
        raise InputError(f"{p}: no DICOM slices in the folder")
    keyed = []
    for q in files:
        try:
            ds = pydicom.dcmread(q, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - pydicom raises several kinds for non-DICOM files
            raise InputError(f"cannot read DICOM {q}") from None
        pos = getattr(ds, "ImagePositionPatient", None)
        keyed.append((float(pos[2]) if pos is not None else float(getattr(ds, "InstanceNumber", 0)), q))
    keyed.sort(key=lambda t: t[0])
    slices = [read_dicom(q, voi_lut=False) for _, q in keyed]
    if len({s.shape for s in slices}) > 1:
        raise InputError(f"{p}: DICOM slices differ in shape")
    return np.stack([s.T for s in slices], axis=-1).astype(np.float32)


def ct_slices(volume: np.ndarray, *, n_slices: int, size: int,
              window: tuple[float, float] = LUNG_WINDOW, axis: int = 2) -> np.ndarray:
    """``n_slices`` evenly spaced axial slices of a HU volume, clipped to ``window``, scaled to
    8 bits and resized to ``size`` x ``size``: uint8 ``(n_slices, size, size)`` (Paper B's
    preprocessing; :func:`volume_slices` then :func:`resize_uint8`)."""
    sl = volume_slices(volume, n_slices=n_slices, window=window, axis=axis)
    if len(sl) != n_slices:
        raise InputError(f"the volume has {len(sl)} slices along axis {axis}, fewer than "
                         f"n_slices={n_slices}")
    return np.stack([resize_uint8(s, size) for s in sl])
