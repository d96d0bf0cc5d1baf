"""The quiz suite's test architectures: switches and presets, the isolation mechanism they drive,
the PostgreSQL server for the postgres storage, and the HTTP clients. Imports only the quiz API."""
