"""Re-export of the versioned weight snapshots, which moved to :mod:`rlinf.models._weights`.

Kept so that ``from rlinf.models.embodied._weights import ...`` keeps working.
"""

from .._weights import StaleWeightsError, VersionedWeights, WeightSnapshot

__all__ = ["StaleWeightsError", "VersionedWeights", "WeightSnapshot"]
