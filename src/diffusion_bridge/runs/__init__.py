"""Runs of the study: their manifests (what was read and written), the Kedro hooks that keep them safe to
interrupt and traceable, and replaying a recorded run."""
