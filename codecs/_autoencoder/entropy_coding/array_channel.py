"""A pipe between two processes whose numpy arrays travel through shared memory.

A range-coding worker takes a batch's latent values and tables (about 4 MB
for 16 GDN checkerboard tiles) and hands decoded values back. Through a pipe
they moved at about 0.5 GB/s on the 2-core VM, pickled or not, which cost as
much as the coding they were sent for; a copy into shared memory runs at
about 4.7 GB/s there. So each message is pickled with protocol 5, which
leaves the arrays' memory out of band: that memory is copied into the
sender's shared-memory segment and only the pickle and the arrays' places in
the segment go through the pipe.

The two ends take turns (request, answer), and each reuses its segment for
its next message, so arrays received are only good until the receiver's next
``send``: the worker end reads them in place (its request is done when it
answers), the end that started the worker copies them (``copy=True``). A
segment is unlinked by the end that made it, when it outgrows it or closes,
or by the other end when the maker died; one left by a process killed
before it could send is removed by multiprocessing's resource tracker.
"""

from __future__ import annotations

import pickle
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from typing import Any

ALIGNMENT = 64
MINIMUM_SEGMENT_BYTES = 1 << 20


class ArrayChannel:
    """One end of the pipe ``connection``; ``copy``: copy received arrays out of shared memory."""

    def __init__(self, connection: Connection, copy: bool):
        self.connection = connection
        self.copy = copy
        self.outgoing: SharedMemory | None = None
        self.incoming: SharedMemory | None = None

    def send(self, message: Any) -> None:
        buffers: list[pickle.PickleBuffer] = []
        data = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
        raws = [buffer.raw() for buffer in buffers]
        spans, end = [], 0
        for raw in raws:
            spans.append((end, raw.nbytes))
            end += -(-raw.nbytes // ALIGNMENT) * ALIGNMENT
        name = self._segment(end).name if raws else None
        for (start, size), raw in zip(spans, raws):
            self.outgoing.buf[start:start + size] = raw
        self.connection.send((data, name, spans))

    def receive(self) -> Any:
        """The next message (``EOFError`` when the other end has closed)."""
        data, name, spans = self.connection.recv()
        if name is None:
            return pickle.loads(data)
        if self.incoming is None or self.incoming.name != name:
            if self.incoming is not None:
                self.incoming.close()
            self.incoming = SharedMemory(name)
        memory = self.incoming.buf
        if self.copy:
            return pickle.loads(data, buffers=[bytes(memory[start:start + size]) for start, size in spans])
        return pickle.loads(data, buffers=[memory[start:start + size] for start, size in spans])

    def _segment(self, size: int) -> SharedMemory:
        """This end's segment, replaced by a larger one if it holds fewer than ``size`` bytes."""
        if self.outgoing is None or self.outgoing.size < size:
            self._unlink_outgoing()
            self.outgoing = SharedMemory(create=True, size=max(MINIMUM_SEGMENT_BYTES, 1 << (size - 1).bit_length()))
        return self.outgoing

    def _unlink_outgoing(self) -> None:
        if self.outgoing is not None:
            self.outgoing.close()
            self.outgoing.unlink()
            self.outgoing = None

    def close(self, peer_died: bool = False) -> None:
        """Close the pipe and the segments (the received arrays must be gone by then); ``peer_died``: also remove
        the other end's segment, which it can no longer remove itself."""
        self._unlink_outgoing()
        if self.incoming is not None:
            self.incoming.close()
            if peer_died:
                self.incoming.unlink()
            self.incoming = None
        self.connection.close()
