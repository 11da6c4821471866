"""``peerpool bill``: nightly previews, the month close and numbered corrections.

    peerpool bill --month 2026-02 --out exports/                 preview of the month so far
    peerpool bill --month 2026-02 --final --out exports/         close the month (once; re-runs verify)
    peerpool bill correct --month 2026-02 --reason TEXT --out exports/

The serving file (``--serving``, default ``$PEERPOOL_WAREHOUSE/serving.duckdb``) is opened
read-only; the configuration (``--config``, default ``$PEERPOOL_CONFIG``) gives fees, members,
contracts and VAT. See docs/billing.md for every rule.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from peerpool.billing.close import Outcome, close_month, correct_month, write_preview
from peerpool.billing.compute import Policy, compute_month
from peerpool.billing.credits import AMBIGUOUS, EXCHANGE_FAULT
from peerpool.billing.document import Document, Inputs
from peerpool.billing.money import fmt
from peerpool.billing.period import Month
from peerpool.billing.serving import ServingFile
from peerpool.config.load import load_exchange
from peerpool.errors import BillingError
from peerpool.settings import resolve

_month = click.option("--month", "month_text", metavar="YYYY-MM", help="billing month (exchange time zone)")
_out = click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PEERPOOL_EXPORTS",
    help="exports folder; documents go to OUT/YYYY-MM/ [PEERPOOL_EXPORTS]",
)
_serving = click.option(
    "--serving",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="serving DuckDB file, opened read-only [default: $PEERPOOL_WAREHOUSE/serving.duckdb]",
)
_config = click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="exchange.toml [PEERPOOL_CONFIG]",
)
_oper_down = click.option(
    "--credit-oper-down",
    is_flag=True,
    help="also credit oper-down outages of member ports as the exchange's fault (default: only unreachable)",
)


def _document(month_text: str | None, serving: Path | None, config: Path | None, oper_down: bool) -> Document:
    if not month_text:
        raise BillingError("no month given: pass --month YYYY-MM")
    paths = resolve(config=config)
    config_path = config if config is not None else paths.config
    exchange = load_exchange(config_path)
    serving_path = (serving or paths.serving_db).resolve()
    month = Month.parse(month_text, exchange.billing.timezone)
    policy = Policy(credited_causes=EXCHANGE_FAULT + (AMBIGUOUS if oper_down else ()))
    with ServingFile(serving_path) as served:
        result = compute_month(exchange, served, month, policy)
    inputs = Inputs(serving_path, Path(config_path).resolve())
    return Document(
        result, inputs.generated_from(result.bill.policy), exchange.billing.member_visibility == "totals"
    )


def _out_dir(out: Path | None, month: str) -> Path:
    if out is None:
        raise BillingError("no exports folder given: pass --out DIR (or set PEERPOOL_EXPORTS)")
    return out / month


def _report(document: Document, outcome: Outcome) -> None:
    bill = document.result.bill
    click.echo(
        f"{bill.month}: {len(bill.members)} members, net {fmt(bill.net)} + VAT {fmt(bill.vat)} = gross "
        f"{fmt(bill.gross)} {bill.currency}; pooled transit bill {fmt(document.result.pool.total)} "
        f"{bill.currency} over {len(document.result.pool.contracts)} contract(s)"
    )
    click.echo(outcome.message)


@click.group(invoke_without_command=True)
@_month
@click.option("--final", is_flag=True, help="close the month: write OUT/YYYY-MM/final/ once, read-only")
@_out
@_serving
@_config
@_oper_down
@click.pass_context
def bill(
    ctx: click.Context,
    month_text: str | None,
    final: bool,
    out: Path | None,
    serving: Path | None,
    config: Path | None,
    credit_oper_down: bool,
) -> None:
    """Member bills for a month: a preview (default) or the month close (--final), with evidence packs."""
    if ctx.invoked_subcommand is not None:
        return
    document = _document(month_text, serving, config, credit_oper_down)
    month_dir = _out_dir(out, document.result.month.label)
    if final:
        end = document.result.month.end_utc
        if dt.datetime.now(dt.UTC) < end:
            raise BillingError(
                f"month {document.result.month.label} has not ended yet (it ends {end.isoformat()}); "
                "a month is closed after its last day: write a preview now (without --final)"
            )
        outcome = close_month(month_dir, document.complete("final"))
    else:
        outcome = write_preview(month_dir, document.complete("preview"))
    _report(document, outcome)


@bill.command()
@_month
@click.option("--reason", required=True, help="why the closed month is corrected (written into the document)")
@_out
@_serving
@_config
@_oper_down
def correct(
    month_text: str | None,
    reason: str,
    out: Path | None,
    serving: Path | None,
    config: Path | None,
    credit_oper_down: bool,
) -> None:
    """Issue the next numbered correction of a closed month (never overwrites the closed files)."""
    document = _document(month_text, serving, config, credit_oper_down)
    month = document.result.month.label
    outcome = correct_month(_out_dir(out, month), month, reason, document.files, document.manifest)
    _report(document, outcome)
