"""Writers of small files in the real on-disk formats (DICOM, NIfTI, JPEG) for the tests.

They live in the package (:mod:`compendium.rehearse.formats`), where the rehearsal of the
``full`` profiles writes its miniature datasets with them."""

from compendium.rehearse.formats import write_dicom, write_jpeg, write_nifti  # noqa: F401
