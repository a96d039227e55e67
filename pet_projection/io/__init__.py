"""Real PET data in and out: STIR Interfile images and projection data, Siemens mMR listmode, NIfTI, PET DICOM.

Readers return arrays in this package's conventions together with the
geometry that places them (:class:`~pet_projection.ImageGrid` for images,
:class:`~pet_projection.projdata.ProjDataLayout` for sinograms); writers
write complete files or nothing. Readers open regular files only and check
the sizes a header gives against the file and the maxima of :mod:`.reading`
before they allocate (NumPy files: :mod:`.numpy_files`), so a hostile or
damaged file gives a ``ValueError`` naming it. A PET DICOM series (a folder,
read with pydicom) comes in Bq/ml or SUV (:mod:`.dicom`).
"""

from .dicom import DicomSeries, read_dicom_header, read_dicom_series
from .header import InterfileError, InterfileHeader, read_header
from .interfile import read_image, read_projdata, read_projdata_header, write_image, write_projdata

__all__ = [
    "DicomSeries",
    "InterfileError",
    "InterfileHeader",
    "read_dicom_header",
    "read_dicom_series",
    "read_header",
    "read_image",
    "read_projdata",
    "read_projdata_header",
    "write_image",
    "write_projdata",
]
