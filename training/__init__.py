"""Command-line tools that build, train, evaluate and publish the search assets (run: python -m training.NAME)."""
