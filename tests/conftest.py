"""Suite-wide settings: one intra-op thread.

The tests run small tensors, where a second thread costs more in hand-offs
than it gains, and on a busy machine far more. Results do not depend on it.
"""
import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
