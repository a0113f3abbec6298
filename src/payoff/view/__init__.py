"""`payoff view`: a local web page over what payoff writes — a run folder (curves, samples,
episodes, prompt groups), a scored JSONL file, and audit, eval and rescore reports.

`payoff.view.sources` finds what a PATH holds; `payoff.view.lines` indexes a JSONL file by byte
offset so a 1 GB samples file pages from disk; `payoff.view.rows` filters and summarises its rows;
`payoff.view.reports` reads the reports; `payoff.view.app` is the FastAPI app and
``static/`` the page (uPlot vendored, no network at run time).
"""
