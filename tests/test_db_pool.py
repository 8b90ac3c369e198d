"""The database pool per process is configurable and checked at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from checkout import create_app
from checkout.config import ConfigError
from checkout.db import Database
from checkout.sandbox.keys import TeemoPayKeyFiles
from tests.support import app_config


def _config(tmp_path: Path, keys: TeemoPayKeyFiles, **extra: object) -> dict:
    raw = app_config.test_config(
        sandbox_url="http://127.0.0.1:9",
        public_base_url="http://127.0.0.1:8000",
        database_url="postgresql://postgres@127.0.0.1:5432/unused",  # never connected to
        instance_path=tmp_path,
        teemopay_keys=keys,
    )
    raw.update(extra)
    return raw


def test_pool_size_and_overflow_reach_the_engine(
    tmp_path: Path, teemopay_keys: TeemoPayKeyFiles
) -> None:
    app = create_app(
        _config(tmp_path, teemopay_keys, database_pool_size=3, database_max_overflow="4")
    )
    pool = Database.bound(app).engine.pool
    assert (pool.size(), pool._max_overflow) == (3, 4)  # type: ignore[attr-defined]
    default = create_app(_config(tmp_path, teemopay_keys))
    pool = Database.bound(default).engine.pool
    assert (pool.size(), pool._max_overflow) == (20, 0)  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["ten", -1, None])
def test_a_bad_pool_size_stops_the_start(
    tmp_path: Path, teemopay_keys: TeemoPayKeyFiles, value: object
) -> None:
    with pytest.raises(ConfigError, match="database_pool_size"):
        create_app(_config(tmp_path, teemopay_keys, database_pool_size=value))
