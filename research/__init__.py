"""Research probes of the learning benchmark (not part of the package): see README.md
here. Importable from a checkout (`from research import oracle_views`) and runnable as
scripts (`python research/oracle_views.py --help`)."""
