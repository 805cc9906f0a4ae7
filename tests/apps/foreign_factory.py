"""Names a standard-library function as if it were this module's factory."""
from subprocess import getoutput as create_app  # noqa: F401 - what a hostile target would name
