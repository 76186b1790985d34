"""apps.train.use_compilation_cache: the config turns JAX's persistent compilation cache on; the environment wins."""
import jax
import pytest

from restorenet_jax.apps import train as main


@pytest.fixture
def restore_cache_dir():
    before = jax.config.jax_compilation_cache_dir
    yield
    jax.config.update("jax_compilation_cache_dir", before)


def test_config_dir_is_used_and_expanded(monkeypatch, tmp_path, restore_cache_dir):
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main.use_compilation_cache("~/xla") == str(tmp_path / "xla")
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "xla")


def test_environment_wins_and_empty_turns_it_off(monkeypatch, tmp_path, restore_cache_dir):
    before = jax.config.jax_compilation_cache_dir
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "env"))
    assert main.use_compilation_cache(str(tmp_path / "config")) == str(tmp_path / "env")
    assert jax.config.jax_compilation_cache_dir == before  # left to JAX, which reads the variable itself
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    assert main.use_compilation_cache("") is None
    assert jax.config.jax_compilation_cache_dir == before
