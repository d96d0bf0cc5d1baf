"""suitebench: measure any pytest suite under several variants in fresh, interleaved processes.

The engine: a pytest plugin that records per-test phase times and database counters, a runner
that starts one pytest process per repetition and stores each run append-only, statistics for
comparing variants, and a regression gate over stored baselines. It knows nothing of the suite
it measures: variants are labels plus pytest arguments.
"""

__version__ = "0.2.0"
