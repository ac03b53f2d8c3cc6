"""pairzoo's Ray folder: the token and session files of the local Ray instances it starts.

Its default path, /tmp/pairzoo-ray-$UID, is predictable, so another user can create it first
and leave a token of theirs inside; Ray started with a token someone else knows is open to
them (they could run code as us). So the folder is trusted only when it is ours and closed:
- the folder: a real directory (not a symbolic link), owned by us, mode 0700, in a parent that
  others cannot rename it out of (not world-writable, or sticky like /tmp);
- the token: a regular file (not a link), owned by us, mode 0600.
Anything else is refused with one line naming the path and the fix; nothing is repaired
silently (a chmod would keep a token someone else planted).

No race between check and use: the folder is created with mode 0700 (or found), then opened
without following links and checked through that descriptor; the token is opened (or created,
exclusively) relative to it, again without following links, and checked with fstat. Once the
folder is ours and 0700, no one else can put or replace anything in it. POSIX only, like the
uid in the default path.
"""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from pathlib import Path

from pairzoo.errors import PairzooError

TOKEN = "auth_token"


def default_ray_dir() -> Path:
    """PAIRZOO_RAY_DIR, else a folder of this user's in the temporary directory. Keep it short:
    Ray puts unix sockets under it, and a socket's path has at most ~107 characters."""
    if os.environ.get("PAIRZOO_RAY_DIR"):
        return Path(os.environ["PAIRZOO_RAY_DIR"])
    return Path(tempfile.gettempdir()) / f"pairzoo-ray-{os.getuid()}"


def secure_ray_dir(ray_dir: Path) -> Path:
    """Create or check the Ray folder and its token as the module says; returns the token's
    path. Raises PairzooError (one line: the path, what is wrong, the fix) when either is
    not safe to use."""
    ray_dir = Path(os.path.abspath(ray_dir))
    fix = (f"remove it (rm -r {ray_dir}) and pairzoo makes a new one, or set PAIRZOO_RAY_DIR "
           "to a folder of your own")
    _check_parent(ray_dir)
    try:
        os.mkdir(ray_dir, 0o700)
    except FileExistsError:
        pass
    except OSError as error:
        raise PairzooError(f"cannot create the Ray folder {ray_dir}: "
                           f"{error.strerror or error}; set PAIRZOO_RAY_DIR to a folder you "
                           "can write") from None
    try:
        folder = os.open(ray_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        raise PairzooError(f"the Ray folder {ray_dir} is not a directory (a symbolic link or "
                           f"a file); {fix}") from None
    try:
        _check_owned(os.fstat(folder), 0o700, f"the Ray folder {ray_dir}", fix)
        _check_token(folder, ray_dir / TOKEN)
    finally:
        os.close(folder)
    return ray_dir / TOKEN


def _check_parent(ray_dir: Path) -> None:
    """A folder in a parent everyone may write to (without the sticky bit of /tmp) can be
    renamed away and replaced by someone else after any check."""
    parent = ray_dir.parent
    parent.mkdir(parents=True, exist_ok=True)  # ordinary folders, as the user asked for them
    mode = os.stat(parent).st_mode
    if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
        raise PairzooError(f"the Ray folder {ray_dir} is in {parent}, which every user can "
                           f"write to (mode {stat.S_IMODE(mode):04o}, no sticky bit); set "
                           "PAIRZOO_RAY_DIR to a folder in a place of your own")


def _check_owned(status: os.stat_result, mode: int, what: str, fix: str) -> None:
    if status.st_uid != os.getuid():
        raise PairzooError(f"{what} belongs to uid {status.st_uid}, not to you (uid "
                           f"{os.getuid()}), so its token may be known to others; {fix}")
    if stat.S_IMODE(status.st_mode) != mode:
        raise PairzooError(f"{what} has mode {stat.S_IMODE(status.st_mode):04o}, not "
                           f"{mode:04o}, so others may have read or replaced its token; {fix}")


def _check_token(folder: int, path: Path) -> None:
    """Open the token relative to the checked folder (never through a link) and check it, or
    create it, exclusively, with a fresh random value."""
    fix = f"remove it (rm {path}) and pairzoo writes a new one"
    try:
        token = os.open(TOKEN, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
    except FileNotFoundError:
        token = os.open(TOKEN, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600,
                        dir_fd=folder)
        with os.fdopen(token, "w") as out:
            out.write(secrets.token_hex(32))
        return
    except OSError:  # ELOOP: a symbolic link
        raise PairzooError(f"Ray's token {path} is not a regular file (a symbolic link?); "
                           f"{fix}") from None
    try:
        status = os.fstat(token)
    finally:
        os.close(token)
    if not stat.S_ISREG(status.st_mode):
        raise PairzooError(f"Ray's token {path} is not a regular file; {fix}")
    _check_owned(status, 0o600, f"Ray's token {path}", fix)
