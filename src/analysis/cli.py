"""Command line: ``python -m analysis {synth,validate,run,cdnow} ...``.

Exit codes: 0 success; 1 a report failed (or, for ``validate``, the data is
invalid); 2 invalid params or data (nothing was produced or replaced); 75
another run holds the output folder's lock; 130 interrupted (SIGINT/SIGTERM).
See docs/scheduling.md.
"""

from __future__ import annotations

import argparse
import sys

from analysis.errors import AnalysisError


def _validate(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m analysis validate",
        description="Check the data named by a params file against the "
        "data contract; print every problem.",
    )
    ap.add_argument("--params", required=True, help="params YAML file")
    args = ap.parse_args(argv)
    from analysis import config, data

    try:
        params = config.load_params(args.params)
    except AnalysisError as exc:
        print(exc, file=sys.stderr)
        return 2
    problems = data.check(params)
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        print(p, file=sys.stderr if p.severity == "error" else sys.stdout)
    if errors:
        print(
            f"{len(errors)} error(s), {len(problems) - len(errors)} warning(s): the data is not "
            "valid; no report will be produced.",
            file=sys.stderr,
        )
        return 1
    print(f"data valid ({len(problems)} warning(s))")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Dispatch a subcommand and return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {
        "synth": "generate the sample world (analysis.synth)",
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
        return 2
    return 2  # pragma: no cover
