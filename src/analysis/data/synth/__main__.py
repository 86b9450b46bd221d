"""Run the generator: ``python -m analysis.data.synth`` (same as ``python -m analysis synth``)."""

from analysis.data.synth.output import main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
