"""Generate the sample world: four contract tables with planted, known effects.

The world is simulated month by month, vectorised over customers (numpy arrays,
chunks of customers), never with Python loops over customers or rows. Every
planted effect is recorded in ``truth`` (written as ``truth.json``) with a
one-line ``definition``. ``docs/sample-world.md`` describes the world in prose.

Time units: the simulation step is one calendar month; tenure is counted in
whole calendar months since the signup month (tenure month 0 = signup month).
Money is in the data's currency (EUR in the default params).

:func:`generate_preset` builds the other business shapes of the gallery
(``subscription``, ``retail``, ``b2b``, ``short``, ``minimal``; :mod:`.presets`).
:func:`stream_world` writes the sample world block by block in bounded memory
(:mod:`.stream`; ``python -m analysis synth`` uses it above 2,000,000 customers or
with ``--chunk-customers``).
"""

from analysis.data.synth.assemble import generate
from analysis.data.synth.output import main, write
from analysis.data.synth.presets import PRESETS, generate_preset
from analysis.data.synth.simulate import (  # noqa: F401
    ARMS,
    LM_FOLLOW,
    LM_LOOKBACK,
    SEQ_FOLLOW,
    SEQ_FULL_TRUTH_CUSTOMERS,
)
from analysis.data.synth.stream import STREAM_THRESHOLD, stream_world  # noqa: F401
from analysis.data.synth.truth import sequential_truth  # noqa: F401
from analysis.data.synth.world import (  # noqa: F401
    ACQ_CHANNELS,
    CHUNK,
    PARAMS,
    PRE_MONTHS,
    PROGRAMME_TIERS,
    REASONS,
    REGIONS,
    SEGMENTS,
    TIERS,
    TOUCHPOINTS,
    TX_CHANNELS,
    SampleWorld,
)

__all__ = [
    "SampleWorld",
    "generate",
    "generate_preset",
    "stream_world",
    "write",
    "main",
    "PARAMS",
    "PRESETS",
]
