"""The media tests use the web tests' Chromium (fake camera flags included)."""

from tests.web.conftest import browser, pytest_collection_modifyitems  # noqa: F401
