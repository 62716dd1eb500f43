"""The demo portfolio of `seed_demo`: the story (data) and its seeding. Load-test data lives in bench/_synthetic.py."""

from ops.demo.seed import DemoResult, credentials_write, demo_passwords_reset, demo_seed, demo_users_ensure
from ops.demo.story import DEMO_USERS, ORG_NAME, ORG_SLUG

__all__ = [
    "DEMO_USERS",
    "ORG_NAME",
    "ORG_SLUG",
    "DemoResult",
    "credentials_write",
    "demo_passwords_reset",
    "demo_seed",
    "demo_users_ensure",
]
