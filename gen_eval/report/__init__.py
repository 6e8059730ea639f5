"""Reporting one run: the HTML report page, its figures and manifest, and the terminal tables.

- ``run_report``: ``gen-eval report RUN`` -> ``RUN/report.html``;
- ``figures``, ``manifest``: the report's charts and its reproduce-this-run section;
- ``html``: the building blocks every self-contained page uses (report, compare, score);
- ``text``: the rich tables ``gen-eval evaluate`` and ``collapse`` print.
"""
