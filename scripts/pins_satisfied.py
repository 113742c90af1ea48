"""Exits 0 when a virtual environment already has every pin of some requirements files.

Usage: .venv/bin/python scripts/pins_satisfied.py tests/requirements.txt [MORE.txt ...]

Lets scripts/setup.sh skip pip (which would ask PyPI) on a re-run: each pinned package
must be installed at its version, and so must the direct requirements of the extras it
names (ray[default] without the dashboard's aiohttp cannot serve `ray job submit`).
Prints what is missing otherwise.
"""
import importlib.metadata as metadata
import sys

# Debian's python3-pip leaves out its copy of packaging, but the pip that `python3 -m venv`
# puts in the environment (from /usr/share/python-wheels) has it.
from pip._vendor.packaging.requirements import Requirement


def problem(req, extra=""):
    """What is wrong with one requirement, or None when it is met."""
    if req.marker is not None and not req.marker.evaluate({"extra": extra}):
        return None
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        return f"{req.name} is not installed"
    # An installed pre-release (opentelemetry's 0.66b2) meets an open requirement too.
    if not req.specifier.contains(version, prereleases=True):
        return f"{req.name} {version} is installed, {req} is wanted"
    return None


def main(paths):
    missing = []
    lines = []
    for path in paths:
        with open(path) as f:
            lines += [line.split("#", 1)[0].strip() for line in f]
    for line in filter(None, lines):
        req = Requirement(line)
        issue = problem(req)
        if issue:
            missing.append(issue)
            continue
        for extra in sorted(req.extras):
            for dep in metadata.requires(req.name) or []:
                issue = problem(Requirement(dep), extra)
                if issue:
                    missing.append(f"{issue} (for {req.name}[{extra}])")
    for issue in missing:
        print(f"setup: {issue}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
