"""Writers of single files in the real on-disk formats (DICOM, NIfTI, PNG, JPEG).

Used by the rehearsal (:mod:`compendium.rehearse`) to lay out miniature datasets exactly as
their sources ship them, and by the test suite's format fixtures.  Each writer creates the
parent folder and returns the path it wrote.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_dicom(path, arr, *, photometric="MONOCHROME2", slope=None, intercept=None,
                window=None, sex=None, age=None, patient_id=None, bits_stored=12):
    """Write a minimal valid single-frame grey DICOM file with pydicom."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import (
        ExplicitVRLittleEndian,
        SecondaryCaptureImageStorage,
        generate_uid,
    )

    arr = np.asarray(arr, dtype=np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.Rows, ds.Columns = arr.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    if slope is not None:
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept or 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if sex is not None:
        ds.PatientSex = sex
    if age is not None:
        ds.PatientAge = age
    if patient_id is not None:
        ds.PatientID = patient_id
    ds.PixelData = arr.tobytes()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(str(path), enforce_file_format=True)
    return Path(path)


def write_nifti(path, hu, *, slope=1.0, inter=0.0):
    """Write a CT volume (Hounsfield units) as NIfTI, stored as int16 with scaling."""
    import nibabel as nib

    raw = np.round((np.asarray(hu, dtype=np.float64) - inter) / slope).astype(np.int16)
    img = nib.Nifti1Image(raw, np.diag([0.7, 0.7, 1.25, 1.0]))
    img.header.set_slope_inter(slope, inter)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return Path(path)


def write_image(path, arr):
    """Write an 8-bit grey image; the format follows the suffix (``.png``, ``.jpg``)."""
    from PIL import Image

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(arr, dtype=np.uint8)
    kw = {"quality": 95} if Path(path).suffix.lower() in (".jpg", ".jpeg") else {}
    Image.fromarray(arr).save(path, **kw)
    return Path(path)


def write_jpeg(path, value=128, shape=(24, 20)):
    """A flat grey JPEG (format fixtures of the tests)."""
    return write_image(path, np.full(shape, value, np.uint8))
