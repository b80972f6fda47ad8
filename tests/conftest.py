"""Suite-wide settings: hypothesis profiles suited to a 2-core CI machine.

CI draws the same examples on every run (derandomize), so a gate's verdict depends on the
change under test; local runs draw fresh examples each time and keep exploring.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
