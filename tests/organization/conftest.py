"""Shared simulator fixtures for the functional-organisation tests (module-scoped: the full size takes seconds)."""
import pytest

from brillm_core.organization.simulate import simulate


@pytest.fixture(scope="session")
def full_sim():
    """The shared page's simulation at full size: 300 TRs, 3,200 ANs, 4,000 voxels."""
    return simulate(seed=0)


@pytest.fixture(scope="session")
def small_sim():
    """A smaller simulation for tests that do not need the full size."""
    return simulate(n_tr=200, n_nodes=20, units_per_node=16, n_voxels=800, voxels_per_atom=50, k_true=4, seed=3)
