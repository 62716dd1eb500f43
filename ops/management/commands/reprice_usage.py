"""Reprice token usage from the command line: the same dry run and apply as the prices page and the API."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops.management.commands._lookup import organization_and_user
from ops.services import usage_reprice_apply, usage_reprice_plan
from tracker.exceptions import DomainError


class Command(BaseCommand):
    help = (
        "List what repricing the organization's waiting (unpriced) usage would change; with --apply, "
        "reprice exactly those entries in one transaction. --include-priced reprices priced usage too."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", metavar="SLUG", required=True, help="The organization.")
        parser.add_argument("--by", metavar="USERNAME", required=True, help="A manager of it (the history names them).")
        parser.add_argument("--model", default="", help="Only this model.")
        parser.add_argument("--include-priced", action="store_true", help="Reprice already priced usage too.")
        parser.add_argument("--apply", action="store_true", help="Apply the dry run (default: list only).")

    def handle(self, *args, org: str, by: str, model: str, include_priced: bool, apply: bool, **options) -> None:
        organization, user = organization_and_user(org=org, by=by)
        try:
            plan = usage_reprice_plan(organization=organization, by=user, include_priced=include_priced, model=model)
            for change in plan.changes:
                old = "unpriced" if change.old_amount is None else change.old_amount
                row = (change.entry_id, change.date, change.project_name, change.model, f"{old} → {change.new_amount}")
                self.stdout.write("\t".join(map(str, row)))
            for total in plan.totals:
                self.stdout.write(
                    f"{total.project_name}: {total.entries} entries, {total.old_total} → {total.new_total}"
                )
            if apply and plan.changes:
                plan = usage_reprice_apply(
                    organization=organization, by=user, entry_ids=plan.entry_ids, include_priced=include_priced
                )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        verb = "Repriced" if apply else "Would reprice"
        self.stdout.write(
            self.style.SUCCESS(f"{verb} {len(plan.changes)} entries; {plan.still_unpriced} still have no price.")
        )
