"""Background threads of the file pipeline: the one implementation the writer, the
reader, the decompressing stream and encryption share.

zlib, hashlib, file writes and age release the GIL, so each runs on a thread of its
own and overlaps with encoding, parsing and comparing rows. Two shapes:

- ``SerialWorker``: steps run one after another on a thread, at most a few waiting
  (the writer's writes, the reader's digests). The first error of a step is raised
  by the next ``submit()`` or by ``wait()``.
- ``BackgroundReader`` and ``BackgroundWriter``: byte chunks handed between a thread
  and its consumer through a bounded ``ChunkQueue`` (decompressing, decrypting,
  encrypting). ``b""`` marks the end; an error of the thread reaches the other side
  in stream order; a side that goes away stops the other instead of leaving it
  blocked on a full queue.

The bounds keep memory flat whatever the size of the file.
"""

from __future__ import annotations

import collections
import contextlib
import io
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

# How long a blocked put waits before it looks again whether to give up.
POLL_SECONDS = 0.1


class Stopped(Exception):
    """The other side went away: the thread's work is to end."""


class SerialWorker:
    """Run steps in order on a thread of its own, at most ``max_pending`` waiting."""

    def __init__(self, name: str, max_pending: int):
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._pending: collections.deque[Future[Any]] = collections.deque()
        self._max_pending = max_pending

    def submit(self, step: Callable[..., Any], *args: Any) -> None:
        """Queue ``step(*args)`` after the steps before it; wait while too many are
        queued; raise what an earlier step raised."""
        # Steps end in order, so the finished ones are at the left.
        while self._pending and self._pending[0].done():
            self._pending.popleft().result()
        if len(self._pending) >= self._max_pending:
            self._pending.popleft().result()
        self._pending.append(self._executor.submit(step, *args))

    def wait(self) -> None:
        """Return once every step so far is done; raise what one of them raised."""
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class ChunkQueue:
    """A bounded queue of byte chunks (or an error) that either side can stop."""

    def __init__(self, size: int):
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(size)
        self._stopping = threading.Event()

    def put(self, item: Any, give_up: Callable[[], bool] = lambda: False) -> bool:
        """Wait for room and put ``item``; False, without it, once the queue is
        stopped or ``give_up()`` is true."""
        while not self._stopping.is_set() and not give_up():
            try:
                self._queue.put(item, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def send(self, item: Any) -> None:
        """Put ``item``; raise Stopped once the queue is stopped."""
        if not self.put(item):
            raise Stopped

    def get(self) -> Any:
        return self._queue.get()

    def drain(self) -> None:
        """Empty the queue, so that a producer blocked on it goes on."""
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()

    def stop(self) -> None:
        self._stopping.set()


class ChunkReader(io.RawIOBase):
    """The reading end of a ChunkQueue.

    An error put in the queue is raised, and again by every later read. ``read(n)``
    with ``n`` at least a chunk's size hands the chunk over as it is, without
    copying it; ``read()`` reads to the end.
    """

    def __init__(self, chunks: ChunkQueue):
        self._chunks = chunks
        self._chunk = b""
        self._offset = 0
        self._at_end = False
        self._error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        if self._offset == len(self._chunk):
            if self._error is not None:
                raise self._error
            if self._at_end:
                return b""
            item = self._chunks.get()
            if isinstance(item, BaseException):
                self._error = item
                raise item
            self._chunk, self._offset = item, 0
            self._at_end = not item
        start = self._offset
        if size >= len(self._chunk) - start:
            self._offset = len(self._chunk)
            return self._chunk if start == 0 else self._chunk[start:]
        self._offset += size
        return self._chunk[start : start + size]

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer)
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


class ChunkWriter(io.RawIOBase):
    """The writing end of a ChunkQueue; a write raises Stopped once it is stopped."""

    def __init__(self, chunks: ChunkQueue):
        self._chunks = chunks

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        chunk = bytes(data)
        if chunk:  # b"" would mark the end
            self._chunks.send(chunk)
        return len(chunk)


class BackgroundReader(ChunkReader):
    """Read what ``produce(chunks)`` sends on a thread of its own, a few chunks ahead.

    An error of ``produce`` is raised to the reader (through ``failure``, which a
    subclass may override to say it in its own words) after the chunks before it.
    ``stop()`` ends the thread at its next chunk.
    """

    def __init__(self, produce: Callable[[ChunkQueue], None], *, name: str, size: int):
        super().__init__(ChunkQueue(size))
        self._thread = threading.Thread(
            target=self._run, args=(produce,), name=name, daemon=True
        )
        self._thread.start()

    def _run(self, produce: Callable[[ChunkQueue], None]) -> None:
        try:
            produce(self._chunks)
            self._chunks.send(b"")
        except Stopped:
            return
        except BaseException as exc:  # handed to the reader, which raises it
            self._chunks.put(self.failure(exc))

    def failure(self, exc: BaseException) -> BaseException:
        """Return the error the reader is to see for ``exc``."""
        return exc

    def stop(self) -> None:
        self._chunks.stop()
        self._thread.join()


class BackgroundWriter(io.RawIOBase):
    """Bytes written here are read by ``consume(reader)`` on a thread of its own.

    An error of ``consume`` is raised by the next ``write()`` or by ``finish()``.
    ``finish()`` marks the end and waits for the thread; ``abort()`` ends it with
    Stopped instead, so that whatever it was writing is left incomplete.
    """

    def __init__(self, consume: Callable[[ChunkReader], None], *, name: str, size: int):
        self._chunks = ChunkQueue(size)
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(consume,), name=name, daemon=True
        )
        self._thread.start()

    def _run(self, consume: Callable[[ChunkReader], None]) -> None:
        try:
            consume(ChunkReader(self._chunks))
        except BaseException as exc:  # raised to the writer by write() or finish()
            self._error = exc
            # Let a writer blocked on a full queue go on, to see the error.
            self._chunks.drain()

    def _failed(self) -> bool:
        return self._error is not None

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        if self._error is not None:
            raise self._error
        chunk = bytes(data)
        if chunk and not self._chunks.put(chunk, self._failed):
            assert self._error is not None  # the put gives up on an error only
            raise self._error from None
        return len(chunk)

    def _end(self, item: Any) -> None:
        self._chunks.put(item, lambda: not self._thread.is_alive())
        self._thread.join()

    def abort(self) -> None:
        self._end(Stopped())

    def finish(self) -> None:
        self._end(b"")
        if self._error is not None:
            raise self._error
