"""Raises at import with a secret in the exception text, after printing it:
what a failed database connection at import time often looks like."""
import sys

DSN = "postgres://admin:s3cr3t-token-42@db.internal/prod"
print("connecting to %s" % DSN, file=sys.stderr, flush=True)
raise RuntimeError("could not connect to %s" % DSN)
