"""The media tests use the web tests' Chromium (fake camera flags included)."""

from tests.web.conftest import browser, pytest_collection_modifyitems, server, shared_chromium  # noqa: F401
