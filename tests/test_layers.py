"""The import direction: projects/ (the lifecycle) knows nothing of ops/, and services never import tasks.

ops registers what projects needs from it (stage gates, project-page panels) through registries, so
the lower app stays importable and testable on its own; tasks call services, never the other way.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> list[tuple[int, str]]:
    """Return (line, module) for every import in the file, function-level ones included.

    `from a import b` counts as importing `a` and, since `b` may be a module, `a.b`; one entry per line.
    """
    found = {}
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.setdefault(node.lineno, []).extend(names)
    return [(line, module) for line, modules in sorted(found.items()) for module in modules]


def _modules(app: str, *, skip: tuple[str, ...] = ()) -> list[Path]:
    return [p for p in sorted((ROOT / app).rglob("*.py")) if not any(part in skip for part in p.parts)]


def _is_services(path: Path) -> bool:
    return path.name == "services.py" or "services" in path.relative_to(ROOT).parts[:-1]


def test_projects_imports_nothing_from_ops():
    # Migrations are frozen history; tests meet the ops gates with ops factories on purpose.
    offending = {
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in _modules("projects", skip=("migrations", "tests"))
        for line, module in _imports(path)
        if module == "ops" or module.startswith("ops.")
    }
    assert not offending, "projects/ must not import ops/:\n" + "\n".join(sorted(offending))


def test_services_never_import_tasks():
    offending = {
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for app in ("projects", "ops", "tracker")
        for path in _modules(app, skip=("migrations", "tests"))
        if _is_services(path)
        for line, module in _imports(path)
        if "tasks" in module.split(".")
    }
    assert not offending, "services enqueue tasks by name, never import them:\n" + "\n".join(sorted(offending))
