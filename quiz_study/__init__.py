"""The study: how much faster is the quiz API's test suite under the transactional architecture,
why, and is it still correct?

Profiles, the seed's targets and claims, the report's tables, display, figures and HTML, the
why-study (design, attribution, floor, scaling), the PostgreSQL and parallel environments, the
notebook helpers and the pipeline `run_all.py` calls. Measurement itself is `suitebench`'s.
"""
