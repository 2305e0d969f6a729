"""`glassbox board [RUNS_DIR]`: a local web page of every run under a folder, live while they train.

It only reads run folders (config.json, metrics.jsonl, summary.json, audit.json, running.json, report.html) and
never writes into one.

    runs.py     which folders are runs, and each run's row in the table (status, steps, score, wall time)
    detail.py   one run's page (curves read as metrics.jsonl grows, headlines) and the settings two runs differ in
    app.py      the FastAPI app and `serve`; the page itself is plain HTML, JS and SVG in static/
"""
