"""`manage.py seed_demo [--projects N] [--superuser]`: the demo portfolio (idempotent); N synthetic projects."""

import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops.demo import DEMO_USERS, credentials_write, demo_passwords_reset, demo_seed, synthetic_seed


class Command(BaseCommand):
    help = "Create the demo portfolio (idempotent); with --projects N also N synthetic projects for load tests."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--projects", type=int, default=0, metavar="N", help="Ensure N synthetic projects exist (load tests)."
        )
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
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(
        self, *args, projects: int, credentials_file: Path, reset_passwords: bool, superuser: bool, **options
    ) -> None:
        if projects < 0:
            raise CommandError("--projects must be 0 or more.")
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
            credentials_write(path=credentials_file, passwords=passwords)
            self.stdout.write(self.style.SUCCESS("Demo logins (shown once; also in " + str(credentials_file) + "):"))
            for username, role, *_ in DEMO_USERS:
                if username in passwords:
                    self.stdout.write(f"  {username:<18} {passwords[username]:<20} {role}")
        if projects:
            created = synthetic_seed(count=projects, progress=not options["no_progress"])
            self.stdout.write(f"Synthetic projects: {created} created, {projects - created} already present.")
        self.stdout.write(f"Done in {time.monotonic() - started:.1f}s.")
