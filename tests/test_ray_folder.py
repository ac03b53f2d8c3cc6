"""pairzoo's Ray folder is trusted only when it is ours and closed (issue 13, class 3).

No Ray starts here: the folder is checked (or made) before Ray is imported, and a refusal is
one line before anything runs.
"""

from __future__ import annotations

import importlib.util
import os
import stat
from pathlib import Path

import pytest

from pairzoo.cli import main
from pairzoo.errors import PairzooError
from pairzoo.experiments.ray_folder import secure_ray_dir

KNOWN = "0123456789abcdef" * 4  # a token someone else knows
NOBODY = 65534
as_root = pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a file away")


def test_a_missing_folder_is_made_private_with_a_fresh_token(tmp_path):
    folder = tmp_path / "ray"
    token = secure_ray_dir(folder)
    assert token == folder / "auth_token"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert len(token.read_text()) == 64 and token.read_text() != KNOWN
    first = token.read_text()
    assert secure_ray_dir(folder) == token and token.read_text() == first  # kept, not renewed


def _open_folder_with_known_token(tmp_path) -> Path:
    """What another user could leave at the predictable default path: mode 0777, their token."""
    folder = tmp_path / "ray"
    folder.mkdir()
    folder.chmod(0o777)
    (folder / "auth_token").write_text(KNOWN)
    return folder


def test_a_folder_open_to_others_holding_a_known_token_is_refused(tmp_path):
    folder = _open_folder_with_known_token(tmp_path)
    with pytest.raises(PairzooError, match=rf"{folder} has mode 0777, not 0700.*rm -r {folder}"):
        secure_ray_dir(folder)
    assert (folder / "auth_token").read_text() == KNOWN  # looked at, not used, not changed


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs pairzoo[ray]")
def test_the_ray_engine_refuses_it_in_one_line_before_anything_runs(tmp_path, monkeypatch,
                                                                    capsys):
    folder = _open_folder_with_known_token(tmp_path)
    monkeypatch.setenv("PAIRZOO_RAY_DIR", str(folder))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    store = tmp_path / "runs.jsonl"
    code = main(["experiment", "--model", "siamese_argmax", "--runs", "1", "--engine", "ray",
                 "--store", str(store), "--out", str(tmp_path / "out"), "--no-plots"])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"pairzoo: error: the Ray folder {folder} ")
    assert not out and not store.exists()
    assert sorted(p.name for p in folder.iterdir()) == ["auth_token"]  # no session started


@as_root
def test_a_folder_of_another_user_is_refused(tmp_path):
    folder = tmp_path / "ray"
    folder.mkdir(mode=0o700)
    os.chown(folder, NOBODY, NOBODY)
    with pytest.raises(PairzooError, match=rf"{folder} belongs to uid {NOBODY}, not to you"):
        secure_ray_dir(folder)


@as_root
def test_a_token_of_another_user_is_refused(tmp_path):
    folder = tmp_path / "ray"
    secure_ray_dir(folder)
    os.chown(folder / "auth_token", NOBODY, NOBODY)
    with pytest.raises(PairzooError, match=rf"token {folder}/auth_token belongs to uid {NOBODY}"):
        secure_ray_dir(folder)


def test_a_token_readable_by_others_is_refused(tmp_path):
    folder = tmp_path / "ray"
    token = secure_ray_dir(folder)
    token.chmod(0o644)
    with pytest.raises(PairzooError, match=rf"token {token} has mode 0644, not 0600.*rm {token}"):
        secure_ray_dir(folder)


def test_links_are_never_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    secure_ray_dir(elsewhere)  # a perfectly private folder, reached through a link
    (tmp_path / "link").symlink_to(elsewhere)
    with pytest.raises(PairzooError, match="is not a directory"):
        secure_ray_dir(tmp_path / "link")

    folder = tmp_path / "ray"
    folder.mkdir(mode=0o700)
    (folder / "auth_token").symlink_to(elsewhere / "auth_token")
    with pytest.raises(PairzooError, match="token .* is not a regular file"):
        secure_ray_dir(folder)


def test_a_folder_in_a_parent_anyone_can_write_without_the_sticky_bit_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # others could rename our folder away and put theirs in its place
    with pytest.raises(PairzooError, match=r"every user can write to \(mode 0777, no sticky"):
        secure_ray_dir(shared / "ray")
    shared.chmod(0o1777)  # as /tmp: only a folder's owner may rename it
    secure_ray_dir(shared / "ray")
