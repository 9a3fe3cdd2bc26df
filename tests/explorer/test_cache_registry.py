"""Disk cache (bounded, self-healing) and the checkpoint allow-list."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from brillm_core import BriLLMError
from explorer.cache import ResultCache, cache_key
from explorer.registry import Registry, UnknownModel

from .conftest import forget_memory


def test_key_depends_on_model_and_settings() -> None:
    a = cache_key("path", "m1", {"p": "x", "n": 1})
    assert a == cache_key("path", "m1", {"n": 1, "p": "x"})
    assert a != cache_key("path", "m2", {"p": "x", "n": 1})
    assert a != cache_key("path", "m1", {"p": "y", "n": 1})


def test_get_or_compute_computes_once(cache_dir: Path) -> None:
    cache, calls = ResultCache(cache_dir), []
    compute = lambda: calls.append(1) or {"v": 1}  # noqa: E731
    assert cache.get_or_compute("k", compute) == {"v": 1}
    forget_memory(cache)
    assert cache.get_or_compute("k", compute) == {"v": 1}
    assert len(calls) == 1


def test_deleted_cache_is_rebuilt(cache_dir: Path) -> None:
    cache = ResultCache(cache_dir)
    cache.set("k", 1)
    forget_memory(cache)
    shutil.rmtree(cache_dir)
    assert cache.get("k") is None
    cache.set("k", 2)
    assert (cache_dir / "cache.db").is_file() and cache.get("k") == 2


def test_corrupt_cache_is_rebuilt(cache_dir: Path) -> None:
    ResultCache(cache_dir).set("k", 1)
    (cache_dir / "cache.db").write_bytes(b"not a database" * 100)
    cache = ResultCache(cache_dir)
    assert cache.get("k") is None
    cache.set("k", 3)
    forget_memory(cache)
    assert cache.get("k") == 3


def test_cache_is_bounded(cache_dir: Path) -> None:
    cache = ResultCache(cache_dir, size_limit=200_000)
    for i in range(40):
        cache.set(f"k{i}", b"x" * 20_000)
    assert cache.volume() < 600_000


def test_registry_lists_and_loads_only_allow_listed(model_root: Path, tmp_path: Path) -> None:
    reg = Registry([model_root])
    assert reg.names() == ["alpha", "beta"]
    assert reg.load("alpha").config.hidden_size == 8
    for bad in ["../alpha", str(model_root / "alpha"), "/etc", "", "alpha/..", "x" * 500]:
        with pytest.raises(UnknownModel):
            reg.load(bad)


def test_registry_follows_links_only_within_its_folders(model_root: Path, tmp_path: Path) -> None:
    inside = tmp_path / "models"
    inside.mkdir()
    (inside / "alias").symlink_to(model_root / "alpha", target_is_directory=True)
    with pytest.raises(UnknownModel, match="outside the configured model folders"):
        Registry([inside]).load("alias")
    assert Registry([inside, model_root]).load("alias").config.hidden_size == 8  # its target's folder is configured


def test_registry_accepts_a_single_checkpoint_dir(model_root: Path) -> None:
    reg = Registry([model_root / "beta", model_root])
    assert reg.names() == ["beta", "alpha", "beta-2"]


def test_corrupt_checkpoint_is_a_brillm_error(model_root: Path, tmp_path: Path) -> None:
    broken = tmp_path / "models" / "broken"
    shutil.copytree(model_root / "alpha", broken)
    (broken / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(BriLLMError, match="safetensors"):
        Registry([tmp_path / "models"]).load("broken")
