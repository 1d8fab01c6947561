"""Specification of the pipe whose numpy arrays travel through shared memory (range-coding workers)."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest
from harness_codecs._autoencoder.entropy_coding.array_channel import MINIMUM_SEGMENT_BYTES, ArrayChannel


@pytest.fixture
def ends():
    """The end that copies what it receives (the pool's) and the end that reads in place (the worker's)."""
    parent, child = multiprocessing.Pipe()
    pool, worker = ArrayChannel(parent, copy=True), ArrayChannel(child, copy=False)
    yield pool, worker
    pool.close()
    worker.close()


def test_a_message_of_arrays_and_other_values_arrives_equal(ends):
    pool, worker = ends
    message = ("encode", [np.arange(12, dtype=np.int16).reshape(3, 4), np.array([], dtype=np.int64)], 7, "latent")

    pool.send(message)
    kind, (first, empty), number, name = worker.receive()

    assert (kind, number, name) == ("encode", 7, "latent")
    np.testing.assert_array_equal(first, message[1][0])
    assert first.dtype == np.int16 and empty.shape == (0,) and empty.dtype == np.int64


def test_a_non_contiguous_array_arrives_equal(ends):
    pool, worker = ends
    strided = np.arange(100, dtype=np.int32).reshape(10, 10)[::3, ::2]

    pool.send(strided)

    np.testing.assert_array_equal(worker.receive(), strided)


def test_arrays_travel_through_shared_memory_not_the_pipe(ends):
    pool, worker = ends
    array = np.ones(1 << 18, dtype=np.int64)  # 2 MiB

    pool.send([array])
    data, name, spans = worker.connection.recv()

    assert len(data) < 1000 and name == pool.outgoing.name and spans == [(0, array.nbytes)]


def test_a_larger_message_moves_to_a_larger_segment_and_still_arrives(ends):
    pool, worker = ends
    pool.send(np.zeros(10, dtype=np.uint8))
    worker.receive()
    first_segment = pool.outgoing.name
    large = np.arange(MINIMUM_SEGMENT_BYTES, dtype=np.int32)

    pool.send(large)

    np.testing.assert_array_equal(worker.receive(), large)
    assert pool.outgoing.name != first_segment and pool.outgoing.size >= large.nbytes


def test_the_copying_end_keeps_what_it_received_when_the_sender_reuses_its_segment(ends):
    pool, worker = ends
    worker.send(np.full(8, 1, dtype=np.int16))
    first = pool.receive()

    worker.send(np.full(8, 2, dtype=np.int16))
    pool.receive()

    assert (first == 1).all()


def test_the_receiving_end_reports_a_closed_pipe_as_end_of_file(ends):
    pool, worker = ends
    pool.close()

    with pytest.raises(EOFError):
        worker.receive()
