"""Compatibility module: the CDNOW loader now lives in :mod:`analysis.data.cdnow`."""

from analysis.data.cdnow import (  # noqa: F401
    CALIBRATION_END,
    OBSERVATION_END,
    SHA256,
    default_dir,
    load,
    main,
    read_master,
    read_sample,
    write,
)
