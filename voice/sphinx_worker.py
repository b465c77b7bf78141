"""pocketsphinx's decoding in a child process.

Why: pocketsphinx's Python binding holds the interpreter lock for a whole decode, so every thread
of the hub stopped while a question was decoded: the event loop with the kiosk's searches, the
till's sales, sync and presence (130 ms for a 2.7 s question on a fast core, 1.6 s for a 9.5 s one
on a fifth of a core, found by a busy-store check with the hub on one core). In a child process a
decode holds only the child's lock; the hub's thread that asked waits on a pipe, which lets go of
its own.

The child keeps a decoder with the dictionary and searches the engine gives it (the engine's own
decoder stays for vocabulary lookups). A child that died is started again with all of them, once
per call; a second death is an EngineError.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import warnings
import weakref
from collections.abc import Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from voice.engine import EngineError

#: Seconds a child may take to stop before it is killed.
STOP_TIMEOUT_S = 5.0


class DecoderProcess:
    """A pocketsphinx decoder in a child process, with the state to start it again."""

    def __init__(self, hmm: Path, settings: Mapping[str, Any]) -> None:
        self._hmm = str(hmm)
        self._settings = dict(settings)
        self._dictionary: str | None = None
        self._searches: dict[str, str] = {}
        self._lm: tuple[str, str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def dictionary(self) -> str | None:
        """The dictionary file the child's decoder reads (the engine's, with added words)."""
        return self._dictionary

    @property
    def searches(self) -> dict[str, str]:
        """The JSGF searches the child holds, by name."""
        return dict(self._searches)

    @property
    def has_language_model(self) -> bool:
        return self._lm is not None

    def load(self, dictionary: Path, searches: Mapping[str, str]) -> None:
        """A decoder with ``dictionary`` and the JSGF ``searches`` (name -> grammar)."""
        self._dictionary, self._searches, self._lm = str(dictionary), dict(searches), None
        self._apply("load", self._hmm, self._settings, self._dictionary, self._searches, None)

    def add(self, name: str, jsgf: str) -> None:
        self._searches[name] = jsgf
        try:
            self._apply("add", name, jsgf)
        except EngineError:  # a grammar it refuses is not kept
            del self._searches[name]
            raise

    def remove(self, name: str) -> None:
        del self._searches[name]
        self._apply("remove", name)

    def add_language_model(self, name: str, path: Path) -> None:
        self._lm = (name, str(path))
        self._apply("lm", name, str(path))

    def decode(self, search: str, pcm: bytes) -> str:
        """The hypothesis for ``pcm`` decoded whole under ``search`` ('' when none)."""
        for attempt in range(2):
            self._ensure()
            try:
                return str(self._call("decode", search, pcm))
            except _ChildDied:
                if attempt:
                    raise EngineError(
                        "the pocketsphinx decoder process stopped twice in a row; see the log"
                    ) from None
        raise AssertionError("unreachable")

    def _apply(self, op: str, *args: Any) -> None:
        """Send a change already in the state; a child started now, or again after it died,
        is given the whole state instead."""
        if self._ensure():
            return
        try:
            self._call(op, *args)
        except _ChildDied:
            self._ensure()

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()

    def _ensure(self) -> bool:
        """Start the child when it is not running, with everything it should hold; True when it
        was started (it holds the current state then)."""
        if self._process is not None and self._process.poll() is None:
            return False
        self.close()
        # A program of its own, not multiprocessing's spawn: that runs the parent's main module
        # again in the child (a bench script, or nothing at all for 'python -c').
        ours, theirs = socket.socketpair()
        source = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (source, os.environ.get("PYTHONPATH")) if p)}
        with theirs:
            process = subprocess.Popen(
                [sys.executable, "-m", "voice.sphinx_worker", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env)
        self._process, self._conn = process, Connection(ours.detach())
        self._finalizer = weakref.finalize(self, _stop, process, self._conn)
        if self._dictionary is not None:
            try:
                self._call("load", self._hmm, self._settings, self._dictionary, self._searches,
                           self._lm)
            except _ChildDied:
                raise EngineError(
                    "the pocketsphinx decoder process stopped while loading the model; see the "
                    "log"
                ) from None
        return True

    def _call(self, op: str, *args: Any) -> Any:
        assert self._conn is not None
        try:
            self._conn.send((op, args))
            status, value = self._conn.recv()
        except (EOFError, OSError):
            self.close()
            raise _ChildDied from None
        if status == "error":
            raise EngineError(value)
        return value


class _ChildDied(Exception):
    """The child process ended (killed, or pocketsphinx crashed it) before it answered."""


def _stop(process: subprocess.Popen[bytes], conn: Connection) -> None:
    try:
        conn.send(("stop", ()))
    except OSError:
        pass
    conn.close()
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _serve(conn: Connection) -> None:
    """The child: answer each (op, args) with ("ok", value) or ("error", message)."""
    from pocketsphinx import Decoder  # only the child decodes

    decoder = None
    while True:
        try:
            op, args = conn.recv()
        except EOFError:  # the hub is gone
            return
        if op == "stop":
            return
        try:
            if op == "load":
                hmm, settings, dictionary, searches, lm = args
                decoder = Decoder(hmm=hmm, dict=dictionary, lm=None, loglevel="FATAL",
                                  **settings)
                for name, jsgf in searches.items():
                    decoder.add_jsgf_string(name, jsgf)
                if lm is not None:
                    decoder.add_lm_file(*lm)
                value: Any = None
            elif op == "add":
                decoder.add_jsgf_string(*args)
                value = None
            elif op == "remove":
                decoder.remove_search(*args)
                value = None
            elif op == "lm":
                decoder.add_lm_file(*args)
                value = None
            else:  # decode
                search, pcm = args
                decoder.activate_search(search)
                # Forget the last question's noise estimate. pocketsphinx 5 calls
                # start_stream() deprecated, yet it still resets the cepstral mean (measured:
                # the same quiet clip after a loud one gives another mean with it than
                # without), so it stays, unwarned.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    decoder.start_stream()
                decoder.start_utt()
                decoder.process_raw(pcm, full_utt=True)
                decoder.end_utt()
                hyp = decoder.hyp()
                value = hyp.hypstr if hyp is not None else ""
            conn.send(("ok", value))
        except Exception as exc:  # the hub's thread raises it as an EngineError
            conn.send(("error", f"pocketsphinx: {exc}"))


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])))
