"""Compatibility module: the sample-world generator now lives in :mod:`analysis.data.synth`."""

from analysis.data.synth import (  # noqa: F401
    ACQ_CHANNELS,
    ARMS,
    CHUNK,
    LM_FOLLOW,
    LM_LOOKBACK,
    PARAMS,
    PRE_MONTHS,
    PROGRAMME_TIERS,
    REASONS,
    REGIONS,
    SEGMENTS,
    SEQ_FOLLOW,
    SEQ_FULL_TRUTH_CUSTOMERS,
    TIERS,
    TOUCHPOINTS,
    TX_CHANNELS,
    SampleWorld,
    generate,
    main,
    sequential_truth,
    stream_world,
    write,
)

__all__ = ["SampleWorld", "generate", "write", "stream_world", "main", "PARAMS"]

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
