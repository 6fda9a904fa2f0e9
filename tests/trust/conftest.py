"""The HQ trust suite uses the sync suite's PKI, broker and PostgreSQL fixtures."""

from tests.sync.conftest import broker, pki, postgres  # noqa: F401  (pytest fixtures)
from tests.trust.support import hq_db  # noqa: F401
