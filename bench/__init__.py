"""always-on benchmarks (issue #7): ``python -m bench`` runs them all; bench/README.md explains each."""
