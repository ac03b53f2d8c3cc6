"""Mirror downloads are bounded (issue 24): a local HTTP server on 127.0.0.1, in a thread of this
process, plays the hostile mirror: a file far larger than the release's, an endless stream, a
trickle, a server that accepts and never answers, and a mirror with the wrong bytes. Each must
be refused in one line, within the download timeout, with no file left in the weights cache.

Every server is stopped by the test that starts it (the context manager joins its threads).
Times are asserted only against generous bounds: CI is a busy 2-core machine.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pairzoo.zoo import WEIGHTS_FILE, WeightsError, release_dir, release_info, weights_path

NAME = "siamese_small_cnn"  # a small release (about 0.4 MB)
TIMEOUT = 1  # PAIRZOO_DOWNLOAD_TIMEOUT in these tests, seconds (each refusal waits it out)
BOUND = 60  # what any refusal may take at most, however busy the machine


@pytest.fixture(autouse=True)
def short_timeout(monkeypatch):
    if not release_dir(NAME).joinpath("metadata.json").is_file():
        pytest.skip(f"{NAME} has no release here")
    monkeypatch.setenv("PAIRZOO_DOWNLOAD_TIMEOUT", str(TIMEOUT))


def cache() -> Path:
    return Path(os.environ["KERAS_HOME"]) / "pairzoo-weights"


def left_in_cache() -> list[str]:
    return sorted(p.name for p in cache().iterdir()) if cache().exists() else []


class Mirror(http.server.BaseHTTPRequestHandler):
    """Answers GET by the server's `behaviour`; stops writing when the client goes away or the
    test ends (`server.stop` is set)."""

    protocol_version = "HTTP/1.0"  # a body without Content-Length ends when the socket closes

    def log_message(self, *args):  # keep the test's output clean
        pass

    def do_GET(self):
        behaviour, stop = self.server.behaviour, self.server.stop
        self.send_response(200)
        if behaviour == "too large":
            self.send_header("Content-Length", str(10**9))  # a 1 GB model.weights.h5
        self.end_headers()
        block = b"\0" * 65536
        try:
            while not stop.is_set():
                if behaviour == "trickle":  # a byte now and then: never an idle socket
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                    stop.wait(0.2)
                else:  # "too large" and "endless": as fast as the client reads
                    self.wfile.write(block)
        except OSError:  # the client hung up: what a bounded download does
            pass


@contextlib.contextmanager
def http_mirror(behaviour: str):
    """A base URL whose server behaves as told; the server and its threads end with the block."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Mirror)
    server.daemon_threads = False  # server_close() joins the handler threads
    server.behaviour, server.stop = behaviour, threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(BOUND)
        assert not thread.is_alive()


@contextlib.contextmanager
def silent_mirror():
    """Accepts connections and sends nothing, until the block ends or BOUND seconds have passed
    (then it hangs up: a client that waits forever fails its test instead of hanging it)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def accept():
        held, give_up = [], time.monotonic() + BOUND
        while not stop.is_set() and time.monotonic() < give_up:
            with contextlib.suppress(TimeoutError):
                held.append(listener.accept()[0])
        for connection in held:
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(BOUND)
        listener.close()
        assert not thread.is_alive()


def refused(base: str, *phrases: str) -> float:
    """Fetching from `base` is refused with `phrases` within BOUND seconds and leaves no file;
    returns the seconds. The fetch runs in a thread, so a download that never ends fails the
    test instead of hanging it (ending the server then ends the download)."""
    outcome = []

    def fetch():
        try:
            outcome.append(weights_path(NAME, base))
        except Exception as error:
            outcome.append(error)

    start = time.monotonic()
    thread = threading.Thread(target=fetch, daemon=True)
    thread.start()
    thread.join(BOUND)
    seconds = time.monotonic() - start
    assert outcome, f"still downloading after {BOUND} s"
    assert isinstance(outcome[0], WeightsError), outcome[0]
    message = str(outcome[0])
    assert "\n" not in message and all(p in message for p in phrases), message
    assert left_in_cache() == []
    return seconds


@pytest.mark.parametrize("behaviour, phrase", [
    ("too large", "1,000,000,000 bytes"),  # refused on its Content-Length, before the body
    ("endless", "goes on past"),  # no length: cut off one byte past the release's size
])
def test_a_mirror_that_sends_too_much_is_cut_off_and_nothing_is_kept(behaviour, phrase):
    with http_mirror(behaviour) as base:
        refused(base, "refused", phrase, f"{release_info(NAME)['weights_bytes']:,}")


@pytest.mark.parametrize("mirror", ["silent", "trickle"])
def test_a_mirror_that_never_finishes_is_given_up_on_in_time(mirror):
    server = silent_mirror() if mirror == "silent" else http_mirror("trickle")
    with server as base:
        seconds = refused(base, "PAIRZOO_DOWNLOAD_TIMEOUT", f"within {TIMEOUT} s")
    assert seconds >= TIMEOUT * 0.9  # it waited as long as allowed, not less


def test_a_file_mirror_with_wrong_bytes_leaves_nothing_in_the_cache(tmp_path):
    packaged = (release_dir(NAME) / WEIGHTS_FILE).read_bytes()
    mirror = tmp_path / "mirror"
    (mirror / NAME).mkdir(parents=True)
    for wrong in (b"not the weights", packaged[:-1] + bytes([packaged[-1] ^ 1])):
        (mirror / NAME / WEIGHTS_FILE).write_bytes(wrong)
        refused(mirror.as_uri(), "does not match", "refused")
    shutil.copyfile(release_dir(NAME) / WEIGHTS_FILE, mirror / NAME / WEIGHTS_FILE)
    assert weights_path(NAME, mirror.as_uri()).read_bytes() == packaged
    assert len(left_in_cache()) == 1  # the good copy only


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf"])
def test_a_bad_download_timeout_is_one_line(value, monkeypatch, tmp_path):
    monkeypatch.setenv("PAIRZOO_DOWNLOAD_TIMEOUT", value)
    with pytest.raises(WeightsError, match="PAIRZOO_DOWNLOAD_TIMEOUT.*positive number"):
        weights_path(NAME, tmp_path.as_uri())


def test_predict_gives_up_on_a_silent_mirror_in_one_line(tmp_path, monkeypatch, pairzoo_cli):
    """Before: `pairzoo predict` hung until killed."""
    pair = tmp_path / "pair.npy"
    np.save(pair, np.zeros((2, 14, 14), np.float32))
    with silent_mirror() as base:
        monkeypatch.setenv("PAIRZOO_WEIGHTS_URL", base)
        result = pairzoo_cli("predict", NAME, pair, check_ok=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "PAIRZOO_DOWNLOAD_TIMEOUT" in lines[0] and "internal error" not in lines[0]
    assert left_in_cache() == []
