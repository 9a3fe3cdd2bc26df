"""The generated bad-input corpus and an explorer served in-process on a free loopback port."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import pytest
from werkzeug.serving import make_server

from explorer.app import create_app

from . import corpus


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, corpus.Broken], dict[str, corpus.ReleaseFiles]]:
    """Broken checkpoints (by name) and release file sets, written once per session."""
    return corpus.build(tmp_path_factory.mktemp("badinput"))


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, files) -> Iterator[dict[str, Path | str]]:
    """The app on 127.0.0.1 with one good checkpoint and every broken one; a valid checkpoint
    lies outside the model folders. Yields its URL and folders."""
    root = tmp_path_factory.mktemp("served")
    models = root / "models"
    corpus.good_checkpoint(models / "good")
    corpus.overflowing_checkpoint(models / "over")
    secret = corpus.good_checkpoint(root / "outside" / "secret", seed=5)
    corpus.good_checkpoint(models / "linked-file")  # its weights: a link to the secret checkpoint's
    (models / "linked-file" / "model.safetensors").unlink()
    (models / "linked-file" / "model.safetensors").symlink_to(secret / "model.safetensors")
    (models / "linked-dir").symlink_to(secret, target_is_directory=True)
    app = create_app([models, files[0]["empty-weights"].path.parent], root / "cache")
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_port}", "root": root, "models": models,
           "broken": files[0]["empty-weights"].path.parent, "cache": root / "cache"}
    server.shutdown()
    thread.join(10)
