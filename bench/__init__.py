"""Benchmarks: each runs mlbus and a baseline in the same run and reports ratios."""
