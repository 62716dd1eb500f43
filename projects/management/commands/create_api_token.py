"""Create a personal API token for a user and print it (the key is shown this once)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from projects.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for USER; the raw token is the last line printed."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="Command line", help="What the token is for.")

    def handle(self, *args, username: str, name: str, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user “{username}”.")
        token, key = api_token_create(user=user, name=name)
        self.stdout.write(
            f"Created token “{token.name}” ({token.prefix}…) for {user}. Keep it secret: it is not shown again."
        )
        self.stdout.write(key)
