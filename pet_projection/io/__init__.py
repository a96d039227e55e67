"""Real PET data in and out: STIR Interfile images and projection data, Siemens mMR listmode, NIfTI.

Readers return arrays in this package's conventions together with the
geometry that places them (:class:`~pet_projection.ImageGrid` for images,
:class:`~pet_projection.projdata.ProjDataLayout` for sinograms); writers
write complete files or nothing.
"""

from .header import InterfileError, InterfileHeader, read_header
from .interfile import read_image, read_projdata, read_projdata_header, write_image, write_projdata

__all__ = [
    "InterfileError",
    "InterfileHeader",
    "read_header",
    "read_image",
    "read_projdata",
    "read_projdata_header",
    "write_image",
    "write_projdata",
]
