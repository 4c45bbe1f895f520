"""`syscap top`: the Textual live view (the only package that imports Textual).

Where things are:
    cli.py            the `top` subcommand: arguments, opening the source (register/run)
    app.py            SyscapTop: layout, keys, and the refresh path (timer -> fetch thread
                      -> SnapshotReady -> batch_update)
    refresh.py        the fetch thread: one snapshot() in flight, source calls serialised
    model.py          TopModel: view stack, sort, search, pause (no Textual)
    views.py          the four tables: processes, syscalls, and their drill-downs (no Textual)
    table.py          LiveTable: virtualised, repaints only changed lines, cursor on a key
    panels.py         header, ring panel, cost-of-watching line
    filters.py        parsing the filter dialog's fields (FilterSpec is capture_lib's)
    screens.py        help, filter dialog, signal confirm, no-capture screen
    restorer_pane.py  the coredump restorer pane: open or take a core, step, go back
    restorer_session.py
                      its engine: one thread owns the restored process (no Textual)

The deterministic sources the tests, the screenshots and bench/tui_bench.py drive
the UI with are development tools, kept out of the installed package: see tests/tui/
(synthetic.py, screenshots.py, restorer_demo.py).
"""
