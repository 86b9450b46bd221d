"""Compatibility module: the report runner now lives in :mod:`analysis.report.runner`.

Page rendering is in :mod:`analysis.report.html`, the privacy guard in
:mod:`analysis.report.guard`, the output files in :mod:`analysis.report.outputs`
and the notebook worker in :mod:`analysis.report.worker`.
"""

import sys

from analysis.report.guard import (  # noqa: F401
    identifiers_to_scan,
    redact_identifiers,
    scan_for_identifiers,
)
from analysis.report.html import (  # noqa: F401
    INDEX_NAME,
    collect_headlines,
    notebook_body_html,
    notebook_title,
    pretty_time,
    render_index_page,
    render_report_page,
)
from analysis.report.outputs import (  # noqa: F401
    EXECUTED_DIR,
    MANIFEST_NAME,
    MAX_ERROR_CHARS,
    RUN_LOG_NAME,
    ReportResult,
    RunResult,
    one_line,
    write_atomic,
)
from analysis.report.runner import (  # noqa: F401
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_REFUSED,
    LOCK_NAME,
    NOTEBOOK_PATTERN,
    POLL_SECONDS,
    TERMINATE_GRACE_SECONDS,
    build_parser,
    git_commit,
    main,
    parse_parameters,
    run,
)
from analysis.report.worker import THREAD_VARS, thread_env  # noqa: F401

if __name__ == "__main__":
    from analysis.report.runner import _worker

    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.exit(_worker(sys.argv[2]))
    sys.exit(main(sys.argv[1:]))
