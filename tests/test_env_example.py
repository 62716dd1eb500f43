"""`.env.example` documents every variable the settings read, and loads as written."""

import re
from pathlib import Path

import environ

ROOT = Path(__file__).resolve().parent.parent


def test_every_variable_the_settings_read_is_documented():
    source = (ROOT / "tracker" / "settings.py").read_text()
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', source))
    documented = set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), flags=re.MULTILINE))
    assert read, "no variables found: the pattern no longer matches settings.py"
    assert read - documented == set()


def test_copying_it_to_dot_env_gives_clean_values(tmp_path):
    class Env(environ.Env):
        ENVIRON: dict[str, str] = {}  # read into a dict of its own, not this process's environment

    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    Env.read_env(tmp_path / ".env")
    env = Env()
    assert env.bool("DJANGO_DEBUG") is True
    assert env("SITE_URL") == "http://127.0.0.1:8000"
    assert env.int("RISK_SIGNAL_STALE_STATUS_DAYS") == 14
    assert "DATABASE_URL" not in Env.ENVIRON  # commented out: the embedded default applies
    assert not [value for value in Env.ENVIRON.values() if "#" in value]
