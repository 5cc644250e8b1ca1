"""The tuning loop tests use the API client of tests/api and the Chromium of tests/web."""

from tests.api.conftest import api as api
from tests.web.conftest import browser as browser
