"""Command line: ``python -m analysis {synth,validate,run,cdnow} ...``.

Exit codes (the same for every command; docs/scheduling.md):

- 0: done (warnings allowed);
- 1: a report failed (``run`` only; the last good HTML is kept);
- 2: refused, nothing produced or replaced: invalid params, invalid data, or a bad
  command line (argparse also exits 2);
- 75: another run holds the output folder's lock (``run``);
- 130: interrupted (SIGINT/SIGTERM).

``validate`` prints what it read (tables, row counts, date ranges, the as-of date)
on standard output, warnings on standard output and errors on standard error.
"""

from __future__ import annotations

import argparse
import os
import sys

from analysis.errors import AnalysisError

EXIT_OK = 0
EXIT_REFUSED = 2
EXIT_INTERRUPTED = 130


def _validate(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m analysis validate",
        description="Check the data named by a params file against the data contract and "
        "the params against the data; print what was read and every problem. Exit 0 when "
        "the data is valid (warnings allowed), 2 when it is not or the params are invalid.",
    )
    ap.add_argument("--params", required=True, help="params YAML file")
    args = ap.parse_args(argv)
    from analysis import config
    from analysis.data import validation

    try:
        params = config.load_params(args.params)
    except AnalysisError as exc:
        print(exc, file=sys.stderr)
        return EXIT_REFUSED
    try:
        found = validation.diagnose(params)
    except KeyboardInterrupt:
        print("interrupted: the data was not fully checked", file=sys.stderr)
        return EXIT_INTERRUPTED
    except AnalysisError as exc:
        print(exc, file=sys.stderr)
        return EXIT_REFUSED
    except Exception as exc:  # noqa: BLE001 - one clean line, never a traceback
        if os.environ.get("ANALYSIS_DEBUG"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        print(
            f"could not validate the data: {type(exc).__name__}: {first} "
            "(set ANALYSIS_DEBUG=1 to see the traceback)",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    for line in found.summary_lines():
        print(line)
    problems = found.problems
    errors = found.errors
    for p in problems:
        print(p, file=sys.stderr if p.severity == "error" else sys.stdout)
    if errors:
        print(
            f"{len(errors)} error(s), {len(problems) - len(errors)} warning(s): the data is not "
            "valid; no report will be produced.",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    print(f"data valid ({len(problems)} warning(s))")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Dispatch a subcommand and return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {
        "synth": "generate a world with planted truth (--preset sample, subscription, retail, b2b, "
        "short, minimal; streamed in bounded memory above 2,000,000 customers or with "
        "--chunk-customers)",
        "validate": "validate the data of a params file",
        "run": "execute the report notebooks and render HTML (analysis.runner)",
        "cdnow": "convert the shipped CDNOW purchase histories to the data contract",
    }
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        print("usage: python -m analysis {" + ",".join(commands) + "} [options]\n")
        for k, v in commands.items():
            print(f"  {k:9s} {v}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    cmd, rest = argv[0], argv[1:]
    try:
        if cmd == "validate":
            return _validate(rest)
        if cmd == "synth":
            from analysis.data import synth

            return synth.main(rest)
        if cmd == "run":
            from analysis import runner

            return runner.main(rest)
        if cmd == "cdnow":
            from analysis.data import cdnow

            return cdnow.main(rest)
    except AnalysisError as exc:
        print(exc, file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_REFUSED  # pragma: no cover
