"""The demo portfolio of `seed_demo`: the story (data), its seeding, and synthetic load-test projects."""

from ops.demo.seed import DemoResult, credentials_write, demo_passwords_reset, demo_seed, demo_users_ensure
from ops.demo.story import DEMO_USERS, ORG_NAME, ORG_SLUG
from ops.demo.synthetic import synthetic_seed

__all__ = [
    "DEMO_USERS",
    "ORG_NAME",
    "ORG_SLUG",
    "DemoResult",
    "credentials_write",
    "demo_passwords_reset",
    "demo_seed",
    "demo_users_ensure",
    "synthetic_seed",
]
