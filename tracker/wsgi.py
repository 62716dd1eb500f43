import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracker.settings")
application = get_wsgi_application()

# This module is the web entry point (gunicorn; runserver loads it too): only web requests get the ceiling.
from tracker.db import web_statement_timeout_apply  # noqa: E402 (needs the settings loaded above)

web_statement_timeout_apply()

# Import the URLconf (every view module: ~1 s of CPU) now rather than in each worker's first request;
# with gunicorn's preload_app this runs once, in the master, before the workers fork.
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018 (the property imports the modules)
