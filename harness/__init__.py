"""`python -m harness`: the study's command line under its historical name (see quiz_study.cli)."""
