"""Billing exports: nightly previews and an immutable, auditable month close.

Accounting invoices members from these files and a member may dispute a bill up to 12
months after the period, so every line is reproducible to the byte from the serving DuckDB
file and the exchange configuration, and checkable by hand from the evidence pack written
beside it. The rules (proration, SLA credits, transit sharing, rounding) are documented in
``docs/billing.md``; the modules are small and named after what they compute:

* ``period``: the billing month in the exchange's time zone;
* ``money``: grosz rounding (half up) and the largest-remainder split;
* ``serving``: the read-only queries against the serving file;
* ``fees``, ``credits``, ``transit``, ``oneoff``: the lines;
* ``compute``: one month's bill for every member;
* ``render``, ``evidence``: the bytes of the export files and evidence packs;
* ``close``: previews, the month close, re-runs and numbered corrections;
* ``cli``: the ``peerpool bill`` command.
"""
