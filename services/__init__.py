"""mlbus services, one package each; they never import each other (tests/unit/test_layout.py)."""
