"""The object store's put / get without Ray: the value itself (the Ray path is what every
Ray flow's trajectories and weights take)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_without_ray_values_are_handed_over_in_place() -> None:
    # A fresh interpreter: this test process may have Ray loaded by other tests.
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        from rlinf.channel import LocalRef, get, is_ref, put

        value = np.arange(6)
        ref = put(value)
        assert isinstance(ref, LocalRef) and is_ref(ref) and not is_ref(value)
        assert get(ref) is value  # no copy, no serialization
        assert get([ref, put("x")]) == [value, "x"]
        assert get(()) == []
        print("ray" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"
