"""The figures another app computes for each project of a list: spend, budget status, risk counts.

projects/ declares the figures its API shows (projects/api/serializers.py) and offers this registry;
ops computes them and registers how from its `AppConfig.ready()` (ops/figures.py), as it registers
its stage gates, so the project resource stays in projects/ and projects/ knows nothing of ops.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from projects.models import Project
from projects.selectors import project_list


def _nothing(row: Project) -> None:
    return None


@dataclass(frozen=True)
class Figures:
    key: str
    # Add the figures' columns to a project query (one subquery each: a page of rows stays one query).
    annotate: Callable[[QuerySet[Project]], QuerySet[Project]]
    # Set on one annotated row what the rule derives from its columns in Python (% used, flags).
    complete: Callable[[Project], None] = _nothing


FIGURES: dict[str, Figures] = {}


def register(figures: Figures) -> Figures:
    FIGURES[figures.key] = figures
    return figures


def project_list_with_figures(*, user: AbstractBaseUser) -> QuerySet[Project]:
    """Return the user's projects (`projects.selectors.project_list`) with every registered figure."""
    projects = project_list(user=user)
    for figures in FIGURES.values():
        projects = figures.annotate(projects)
    return projects


def figures_complete(row: Project) -> None:
    """Derive the Python-side figures of one row of `project_list_with_figures`."""
    for figures in FIGURES.values():
        figures.complete(row)
