from __future__ import annotations

import pytest

from arimonitor.sim.apidocs import ApiDocs
from tests.support import ARI


@pytest.fixture(scope="session")
def apidocs() -> ApiDocs:
    return ApiDocs(ARI / "api-docs")
