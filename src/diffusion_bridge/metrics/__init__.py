"""Metrics: embedding alignment across the modality gap, captioning scores and attribute checks."""
