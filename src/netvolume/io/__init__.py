"""Readers and writers: the only place where outside conventions (DICOM, NIfTI RAS,
SimpleITK) are converted to netvolume's own (see :mod:`netvolume.volume`)."""
