"""Where documents go, and the rules that make a closed month immutable.

``OUT/YYYY-MM/preview/``        the month so far; replaced by every preview run (atomically)
``OUT/YYYY-MM/final/``          the month close, written once; files 0444, folders 0555
``OUT/YYYY-MM/correction-NN/``  a numbered correction: the whole bill again plus the
                                differences per line, referring to the original by the sha256
                                of its ``MANIFEST.json``; never an overwrite

Every document has a ``MANIFEST.json`` with the sha256 and size of each file. Closing a month
again compares the new files with the closed ones:

* all bytes equal: ``identical``, nothing is written;
* the bill and evidence equal and only the ``generated_from`` checksums differ (the month was
  billed again from a newer serving file or an edited configuration that change nothing in
  it): ``unchanged``, nothing is written, the message names both checksums;
* anything else: refused with :class:`BillingError` naming the differing files; a correction
  (``peerpool bill correct``) is the only way to change a closed month.

A document is written into a temporary folder beside its place and renamed into it, under an
exclusive lock on ``OUT/YYYY-MM/.lock``, so a reader never sees half a document and two
closes of one month cannot race.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from peerpool.billing.render import csv_bytes, json_bytes
from peerpool.errors import BillingError

MANIFEST = "MANIFEST.json"
CORRECTION = "CORRECTION.json"
_CORRECTION_DIR = re.compile(r"^correction-(\d{2,})$")

Renderer = Callable[[str, dict[str, Any] | None], dict[str, bytes]]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_bytes(
    files: dict[str, bytes], document: dict[str, Any], generated_from: dict[str, Any]
) -> bytes:
    return json_bytes(
        {
            "document": document,
            "generated_from": generated_from,
            "files": [
                {"path": path, "sha256": sha256_bytes(files[path]), "bytes": len(files[path])}
                for path in sorted(files)
            ],
        }
    )


@dataclass(frozen=True)
class Outcome:
    """What a run did: ``written``, ``identical``, ``unchanged`` (see the module docstring)."""

    action: str
    path: Path
    message: str


@contextlib.contextmanager
def month_lock(month_dir: Path) -> Iterator[None]:
    month_dir.mkdir(parents=True, exist_ok=True)
    with (month_dir / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_tree(target: Path, files: dict[str, bytes], read_only: bool) -> None:
    """Write ``files`` into a temporary folder beside ``target`` and rename it to ``target``."""
    tmp = target.with_name(f".tmp-{target.name}-{os.getpid()}")
    if tmp.exists():
        _remove_tree(tmp)
    try:
        for rel, data in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        if read_only:
            for path in sorted(tmp.rglob("*"), reverse=True):
                path.chmod(0o555 if path.is_dir() else 0o444)
            tmp.chmod(0o555)
        if target.exists():
            if read_only:
                raise BillingError(f"{target} appeared while writing; nothing was changed")
            old = target.with_name(f".old-{target.name}-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            _remove_tree(old)
        else:
            os.replace(tmp, target)
    except BaseException:
        if tmp.exists():
            _remove_tree(tmp)
        raise


def _remove_tree(path: Path) -> None:
    for sub in [path, *path.rglob("*")]:
        if sub.is_dir() and not sub.is_symlink():
            sub.chmod(0o755)
    shutil.rmtree(path)


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _zip_contents(data: bytes) -> dict[str, bytes] | None:
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except zipfile.BadZipFile:
        return None


def compare(
    new: dict[str, bytes], old: dict[str, bytes], new_from: dict[str, Any], old_from: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """(files whose bytes differ, files that still differ once input checksums are set aside)."""
    differ = sorted(p for p in set(new) | set(old) if new.get(p) != old.get(p))
    swaps = [
        (str(new_from.get(key, "")).encode(), str(old_from.get(key, "")).encode())
        for key in ("serving_sha256", "config_sha256")
        if new_from.get(key) and old_from.get(key)
    ]
    real = []
    for path in differ:
        a, b = new.get(path), old.get(path)
        if a is None or b is None:
            real.append(path)
            continue
        for mine, theirs in swaps:
            a = a.replace(mine, theirs)
        if a == b:
            continue
        if path == MANIFEST and _same_manifest(a, b):
            continue  # its checksums differ only where the files it lists differ (judged on their own)
        if path.endswith(".zip") and _zip_contents(a) is not None and _zip_contents(a) == _zip_contents(b):
            continue  # same entries, other compression (a different zlib): the same evidence
        real.append(path)
    return differ, real


def _same_manifest(a: bytes, b: bytes) -> bool:
    """Manifests alike but for the files' checksums and sizes (which the files themselves settle)."""
    x, y = json.loads(a), json.loads(b)
    paths = [[f["path"] for f in m.get("files", [])] for m in (x, y)]
    return bool(
        paths[0] == paths[1]
        and x.get("document") == y.get("document")
        and x.get("generated_from") == y.get("generated_from")
    )


def _generated_from(files: dict[str, bytes]) -> dict[str, Any]:
    manifest = files.get(MANIFEST)
    if manifest is None:
        return {}
    value = json.loads(manifest).get("generated_from", {})
    return value if isinstance(value, dict) else {}


def _describe(paths: list[str], limit: int = 12) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def write_preview(month_dir: Path, files: dict[str, bytes]) -> Outcome:
    target = month_dir / "preview"
    with month_lock(month_dir):
        _write_tree(target, files, read_only=False)
    return Outcome("written", target, f"preview written to {target} ({len(files)} files)")


def close_month(month_dir: Path, files: dict[str, bytes]) -> Outcome:
    """Write the month close once; on a re-run verify it instead (see the module docstring)."""
    target = month_dir / "final"
    with month_lock(month_dir):
        if not target.exists():
            _write_tree(target, files, read_only=True)
            return Outcome("written", target, f"month closed: {target} ({len(files)} files, read-only)")
        return _verify(target, files, "the closed month", f"peerpool bill correct --month {month_dir.name}")


def _verify(target: Path, files: dict[str, bytes], what: str, fix: str) -> Outcome:
    old = read_tree(target)
    if MANIFEST not in old:
        raise BillingError(
            f"{target} has no {MANIFEST}: it is not a complete document; move it aside and close again"
        )
    differ, real = compare(files, old, _generated_from(files), _generated_from(old))
    if not differ:
        return Outcome(
            "identical", target, f"identical: {target} matches this run byte for byte; nothing written"
        )
    if not real:
        old_from, new_from = _generated_from(old), _generated_from(files)
        return Outcome(
            "unchanged",
            target,
            f"unchanged: {target} holds the same bill and evidence; only the input checksums differ "
            f"(serving {old_from.get('serving_sha256')} then, {new_from.get('serving_sha256')} now; "
            f"config {old_from.get('config_sha256')} then, {new_from.get('config_sha256')} now); "
            "nothing written",
        )
    raise BillingError(
        f"refused: {what} {target} differs from this run in {len(real)} file(s): {_describe(real)}. "
        "A closed month is never overwritten; to change it, issue a numbered correction with "
        f"'{fix} --reason TEXT'"
    )


# --- corrections ---------------------------------------------------------------------------------


def documents(month_dir: Path) -> list[str]:
    """The month's closed documents in order: ``final``, ``correction-01``, ..."""
    found = []
    if (month_dir / "final").is_dir():
        found.append("final")
    numbered = (
        sorted(
            (int(m.group(1)), p.name)
            for p in month_dir.iterdir()
            if p.is_dir() and (m := _CORRECTION_DIR.match(p.name))
        )
        if month_dir.is_dir()
        else []
    )
    return found + [name for _, name in numbered]


def correction_name(number: int) -> str:
    return f"correction-{number:02d}"


def _bill_json(root_files: dict[str, bytes], month: str) -> dict[str, Any]:
    data = root_files.get(f"bill-{month}.json")
    if data is None:
        raise BillingError(f"the closed document has no bill-{month}.json; it is not a peerpool bill")
    value = json.loads(data)
    if not isinstance(value, dict):
        raise BillingError(f"bill-{month}.json is not a bill document")
    return value


def line_differences(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    """Per line and per member total: what changed between two bill documents (combined JSON)."""

    def lines(doc: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
        return {
            (m["member_id"], line["kind"], line["reference"]): line
            for m in doc["members"]
            for line in m["lines"]
        }

    def totals(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {m["member_id"]: m for m in doc["members"]}

    from decimal import Decimal

    old_lines, new_lines = lines(old), lines(new)
    line_rows = []
    for key in sorted(set(old_lines) | set(new_lines)):
        a, b = old_lines.get(key), new_lines.get(key)
        if (
            a is not None
            and b is not None
            and all(a[f] == b[f] for f in ("description", "quantity", "unit", "unit_price", "amount_net"))
        ):
            continue
        change = "added" if a is None else "removed" if b is None else "changed"
        old_amount = Decimal(a["amount_net"]) if a else Decimal("0.00")
        new_amount = Decimal(b["amount_net"]) if b else Decimal("0.00")
        line_rows.append(
            [
                *key,
                change,
                a["description"] if a else "",
                b["description"] if b else "",
                a["quantity"] if a else "",
                b["quantity"] if b else "",
                f"{old_amount:f}",
                f"{new_amount:f}",
                f"{new_amount - old_amount:f}",
            ]
        )
    old_totals, new_totals = totals(old), totals(new)
    total_rows = []
    for member_id in sorted(set(old_totals) | set(new_totals)):
        a, b = old_totals.get(member_id), new_totals.get(member_id)
        row = [member_id]
        same = True
        for field in ("net", "vat", "gross"):
            x = Decimal(a[field]) if a else Decimal("0.00")
            y = Decimal(b[field]) if b else Decimal("0.00")
            same = same and x == y
            row += [f"{x:f}", f"{y:f}", f"{y - x:f}"]
        if not same:
            total_rows.append(row)
    return line_rows, total_rows


LINE_DIFF_COLUMNS = (
    "member_id", "kind", "reference", "change", "old_description", "new_description", "old_quantity",
    "new_quantity", "old_amount_net", "new_amount_net", "delta_net",
)  # fmt: skip
TOTAL_DIFF_COLUMNS = (
    "member_id", "old_net", "new_net", "delta_net", "old_vat", "new_vat", "delta_vat", "old_gross",
    "new_gross", "delta_gross",
)  # fmt: skip


def correct_month(
    month_dir: Path,
    month: str,
    reason: str,
    render: Renderer,
    finish: Callable[[dict[str, bytes], str], bytes],
) -> Outcome:
    """Issue the next numbered correction of a closed month, or confirm the latest one.

    ``render(status, header_extra)`` gives the document's files without its manifest;
    ``finish(files, status)`` gives the manifest bytes for them.
    """
    if not reason.strip():
        raise BillingError(
            "a correction needs a reason: pass --reason TEXT (it is written into the document)"
        )
    with month_lock(month_dir):
        docs = documents(month_dir)
        if not docs or docs[0] != "final":
            raise BillingError(
                f"{month_dir}: the month {month} is not closed, so there is nothing to correct; "
                "close it first "
                f"with 'peerpool bill --month {month} --final'"
            )
        trees = {name: read_tree(month_dir / name) for name in docs}
        original_sha = sha256_bytes(trees["final"][MANIFEST])
        latest = docs[-1]
        if latest != "final":
            # is this run the latest correction again? re-render it exactly and compare
            number = int(latest.rsplit("-", 1)[1])
            previous = docs[-2]
            files = _correction_files(render, month, reason, number, original_sha, previous, trees[previous])
            files[MANIFEST] = finish(files, latest)
            differ, real = compare(
                files, trees[latest], _generated_from(files), _generated_from(trees[latest])
            )
            if not differ:
                return Outcome(
                    "identical", month_dir / latest, f"identical: {latest} matches this run; nothing written"
                )
            if not real:
                return Outcome(
                    "unchanged",
                    month_dir / latest,
                    f"unchanged: {latest} holds the same correction; nothing written",
                )
        number = int(latest.rsplit("-", 1)[1]) + 1 if latest != "final" else 1
        name = correction_name(number)
        files = _correction_files(render, month, reason, number, original_sha, latest, trees[latest])
        if files is None or not _has_differences(files):
            raise BillingError(
                f"nothing to correct: this run gives the same lines as {month_dir / latest}; a correction is "
                "issued only when a line changes"
            )
        files[MANIFEST] = finish(files, name)
        target = month_dir / name
        _write_tree(target, files, read_only=True)
        return Outcome(
            "written", target, f"correction written: {target} (refers to final MANIFEST {original_sha})"
        )


def _has_differences(files: dict[str, bytes]) -> bool:
    return bool(json.loads(files[CORRECTION])["line_differences"])


def _correction_files(
    render: Renderer,
    month: str,
    reason: str,
    number: int,
    original_sha: str,
    previous: str,
    previous_files: dict[str, bytes],
) -> dict[str, bytes]:
    status = correction_name(number)
    reference = {
        "number": number,
        "reason": reason.strip(),
        "corrects": {"document": "final", "manifest_sha256": original_sha},
        "previous": {"document": previous, "manifest_sha256": sha256_bytes(previous_files[MANIFEST])},
    }
    files = render(status, {"correction": reference})
    line_rows, total_rows = line_differences(_bill_json(previous_files, month), _bill_json(files, month))
    files["differences-lines.csv"] = csv_bytes(LINE_DIFF_COLUMNS, line_rows)
    files["differences-totals.csv"] = csv_bytes(TOTAL_DIFF_COLUMNS, total_rows)
    files[CORRECTION] = json_bytes(
        {
            **reference,
            "month": month,
            "line_differences": [dict(zip(LINE_DIFF_COLUMNS, row, strict=True)) for row in line_rows],
            "total_differences": [dict(zip(TOTAL_DIFF_COLUMNS, row, strict=True)) for row in total_rows],
        }
    )
    return files
