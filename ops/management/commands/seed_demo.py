"""`manage.py seed_demo [--superuser]`: the demo portfolio (idempotent). Load-test data: bench/_synthetic.py."""

import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops.demo import DEMO_USERS, credentials_write, demo_passwords_reset, demo_seed


class Command(BaseCommand):
    help = "Create the demo portfolio (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--credentials-file",
            type=Path,
            default=settings.BASE_DIR / ".demo-credentials",
            help="Where new demo logins are written (mode 0600). Default: .demo-credentials in the repository.",
        )
        parser.add_argument(
            "--reset-passwords", action="store_true", help="Give the demo logins new passwords (e.g. file lost)."
        )
        parser.add_argument(
            "--superuser",
            action="store_true",
            help="Also make demo-admin a platform superuser (staff), for the Django admin. Off by default.",
        )

    def handle(self, *args, credentials_file: Path, reset_passwords: bool, superuser: bool, **options) -> None:
        started = time.monotonic()
        result = demo_seed(superuser=superuser, log=lambda line: self.stdout.write(line))
        if superuser:
            self.stdout.write("demo-admin is a platform superuser: it can sign in to /admin/.")
        if result.projects_created:
            self.stdout.write(f"Demo portfolio: {len(result.projects_created)} projects created.")
        else:
            self.stdout.write("Demo portfolio already present.")
        passwords = result.passwords
        if reset_passwords:
            passwords = demo_passwords_reset()
        if passwords:
            try:
                credentials_write(path=credentials_file, passwords=passwords)
            except ValueError as error:
                raise CommandError(f"--credentials-file: {error}") from error
            self.stdout.write(self.style.SUCCESS("Demo logins (shown once; also in " + str(credentials_file) + "):"))
            for username, role, *_ in DEMO_USERS:
                if username in passwords:
                    self.stdout.write(f"  {username:<18} {passwords[username]:<20} {role}")
        self.stdout.write(f"Done in {time.monotonic() - started:.1f}s.")
