"""Import a price book into an organization: the same import as the prices page and the API."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops.imports.prices import PriceImport, PriceRowChange, PriceSource, model_prices_import, price_book_read
from ops.management.commands._lookup import organization_and_user
from tracker.exceptions import DomainError


def _rates(change: PriceRowChange) -> str:
    new = change.new
    cached = "—" if new.cached_input is None else new.cached_input
    line = f"input {new.input}, cached {cached}, output {new.output}"
    if change.old is not None:
        old = change.old
        line += f" (was {old.input}, {'—' if old.cached_input is None else old.cached_input}, {old.output})"
    return line + (f"; deprecated {change.deprecation_date}" if change.deprecation_date else "")


class Command(BaseCommand):
    help = (
        "Load model prices into an organization from genai-prices' bundled data or a LiteLLM "
        "model_prices_and_context_window.json; print the diff. --dry-run writes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", help="The LiteLLM price file (not for genai-prices).")
        parser.add_argument("--org", metavar="SLUG", required=True, help="The organization.")
        parser.add_argument("--by", metavar="USERNAME", required=True, help="A manager of it (the history names them).")
        parser.add_argument("--source", choices=PriceSource.values, required=True)
        parser.add_argument("--dry-run", action="store_true", help="Show the diff; write nothing.")

    def handle(self, *args, org: str, by: str, source: str, file: str | None, dry_run: bool, **options) -> None:
        organization, user = organization_and_user(org=org, by=by)
        if (source == PriceSource.LITELLM) != bool(file):
            raise CommandError("A LiteLLM import reads FILE; genai-prices reads its bundled data and takes none.")
        try:
            data = json.loads(Path(file).read_text(encoding="utf-8")) if file else None
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from exc
        try:
            book = price_book_read(source=source, data=data)
            result = model_prices_import(organization=organization, by=user, book=book, dry_run=dry_run)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self._write(result, org=org, by=by)

    def _write(self, result: PriceImport, *, org: str, by: str) -> None:
        out = self.stdout.write
        writes = len(result.new) + len(result.changed)
        out(f"{result.version}: {result.models_read} models read, {writes} prices to write.")
        for title, changes in (("New models", result.new), ("Changed prices", result.changed)):
            out(f"{title} ({len(changes)}):")
            for c in changes:
                out(f"  {c.provider}\t{c.model}\tfrom {c.valid_from}\t{_rates(c)}")
        out(f"Deprecation dates ({len(result.deprecations)}):")
        for d in result.deprecations:
            out(f"  {d.provider}\t{d.model}\tprice from {d.valid_from}\t{d.old or '—'} → {d.new}")
        out(f"Unchanged: {result.unchanged}.")
        if result.kept:
            out(f"Kept ({len(result.kept)}): the organization's own prices on those dates, not rewritten:")
            for k in result.kept:
                out(f"  {k.provider}\t{k.model}\tfrom {k.valid_from}")
        out("Not imported:")
        for reason, count in result.not_imported.items():
            out(f"  {reason}: {count}")
        if result.unknown_providers:
            names = ", ".join(f"{name} ({n})" for name, n in result.unknown_providers.items())
            total = sum(result.unknown_providers.values())
            out(f"  providers outside the tracker's vocabulary: {total} models: {names}")
        plan = result.reprice
        if plan is not None:
            when = "" if result.applied else "after this import "
            out(f"Repricing waiting usage {when}would price {len(plan.changes)} entries.")
            for total in plan.totals:
                out(f"  {total.project_name}: {total.entries} entries, {total.old_total} → {total.new_total}")
            if plan.changes:
                out(f"  Apply with: manage.py reprice_usage --org {org} --by {by} --apply")
        if result.applied and result.writes:
            self.stdout.write(self.style.SUCCESS(f"Imported: {result.writes} changes, one history event."))
        elif result.applied:
            self.stdout.write(self.style.SUCCESS("Nothing to import: the organization's prices already match."))
        else:
            self.stdout.write(self.style.SUCCESS(f"Dry run: nothing written (digest {result.digest})."))
