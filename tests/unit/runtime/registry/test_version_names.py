"""Version names are DNS labels, so every name can be addressed in a URL path, a health
service name and a metric label."""

from __future__ import annotations

import pytest

from recops_runtime.api.errors import ServiceError, Status
from recops_runtime.registry.version_registry import check_version_name


@pytest.mark.parametrize("name", ["v1", "1", "stable", "candidate", "v2-canary", "a" * 63])
def test_names_in_use_are_accepted(name: str) -> None:
    check_version_name(name)


@pytest.mark.parametrize(
    "name", ["", "a/b", "V1", "v_1", "-v1", "v1-", "v1.2", "a" * 64, "v 1", "ü"]
)
def test_other_names_are_refused_naming_the_field_and_rule(name: str) -> None:
    with pytest.raises(ServiceError) as caught:
        check_version_name(name)
    assert caught.value.status is Status.INVALID_ARGUMENT
    assert caught.value.message.startswith("version: 1 to 63 lowercase letters")
    assert repr(name) in caught.value.message
