"""Shared pytest fixtures. They live in plugin modules by topic; this file only lists them."""

pytest_plugins = [
    "tests.fixtures_data",
    "tests.fixtures_mlflow",
    "tests.fixtures_flights",
    "tests.fixtures_serve",
    "tests.fixtures_prometheus",
]
