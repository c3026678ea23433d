"""Reading pixels: PNG/JPEG, DICOM, NIfTI CT volumes; a resized uint8 cache; a Dataset.

:func:`pixels` is the one accessor pipelines use for the pixels of a cohort's rows.
"""

from .cache import pixels
from .io import (hu_window, read_dicom, read_image, read_nifti, read_pixels, resize_uint8,
                 standardise_cxr, to_uint8, volume_slices)

__all__ = ["pixels", "hu_window", "read_dicom", "read_image", "read_nifti", "read_pixels", "resize_uint8",
           "standardise_cxr", "to_uint8", "volume_slices"]
