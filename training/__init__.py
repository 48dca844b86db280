"""Command-line tools that build, train, evaluate and publish the semantic-search assets (run as python -m training.X)."""
