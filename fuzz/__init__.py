"""Fuzzing impasto's loaders of untrusted files: see docs/fuzzing.md."""
