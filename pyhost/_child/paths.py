"""Where a file sits: its module name, and whether it is library code (child side)."""
import os

__all__ = ["module_name_for_file", "is_library_path"]


def module_name_for_file(path):
    """Like Flask's prepare_import: walk up packages to find the import root."""
    path = os.path.realpath(path)
    directory, filename = os.path.split(path)
    parts = [os.path.splitext(filename)[0]]
    if parts[0] == "__init__":
        parts = []
        directory, package = os.path.split(directory)
        parts.append(package)
    while os.path.isfile(os.path.join(directory, "__init__.py")):
        directory, package = os.path.split(directory)
        parts.append(package)
    return directory, ".".join(reversed(parts))


def is_library_path(filename):
    import sysconfig

    path = os.path.abspath(filename)
    if "site-packages" in path or "dist-packages" in path:
        return True
    stdlib = sysconfig.get_paths().get("stdlib")
    return bool(stdlib) and path.startswith(os.path.abspath(stdlib) + os.sep)
