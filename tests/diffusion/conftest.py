"""One intra-op thread for these tests: on a small shared CPU, two OpenMP threads that compete with
other processes make tiny kernels ~10x slower, and one thread keeps timings steady."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
