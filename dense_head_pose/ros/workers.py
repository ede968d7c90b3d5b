"""The node's two worker threads and the one-slot mailboxes that feed them.

Subscription callbacks only leave the newest frame in a :class:`Mailbox` (never a backlog;
``put`` says when it replaced a frame nobody took, which the node counts as dropped). A
:class:`Worker` takes items from its mailbox and handles them on its own thread; it knows
whether it is busy, so a deactivation can wait for the frame in hand to be finished.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Mailbox:
    """A one-slot, newest-wins hand-over between threads."""

    def __init__(self) -> None:
        self._item: Any = None
        self._cv = threading.Condition()
        self._closed = False

    def put(self, item: Any) -> bool:
        """Leave ``item``; returns True if it replaced one nobody had taken."""
        with self._cv:
            replaced = self._item is not None
            self._item = item
            self._cv.notify()
        return replaced

    def take(self) -> Any:
        """Wait for an item and take it; None once closed."""
        with self._cv:
            while self._item is None and not self._closed:
                self._cv.wait()
            item, self._item = self._item, None
            return None if self._closed else item

    def clear(self) -> bool:
        """Drop the waiting item; whether there was one."""
        with self._cv:
            had, self._item = self._item is not None, None
            return had

    def close(self) -> None:
        """Wake and stop every taker."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()


class Worker:
    """A daemon thread handling the items of a :class:`Mailbox` with ``handle(*item)``;
    ``on_error(exc)`` hears of anything ``handle`` raised (the worker goes on)."""

    def __init__(self, name: str, handle: Callable[..., None],
                 on_error: Callable[[BaseException], bool]) -> None:
        self.mailbox = Mailbox()
        self._handle = handle
        self._on_error = on_error
        self._idle = threading.Condition()
        self._busy = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def __str__(self) -> str:
        return self._thread.name

    def _run(self) -> None:
        while (item := self.mailbox.take()) is not None:
            with self._idle:
                self._busy = True
            try:
                self._handle(*item)
            except Exception as exc:  # the node must outlive any frame, whatever went wrong
                if not self._on_error(exc):
                    return
            finally:
                with self._idle:
                    self._busy = False
                    self._idle.notify_all()

    def drain(self, timeout: float) -> bool:
        """Drop the waiting item and wait for the one in hand; False on timeout."""
        self.mailbox.clear()
        with self._idle:
            return self._idle.wait_for(lambda: not self._busy, timeout)

    def stop(self, timeout: float) -> None:
        """Stop the thread (it finishes the item in hand), waiting ``timeout`` s at most."""
        self.mailbox.close()
        self._thread.join(timeout=max(timeout, 0.0))
