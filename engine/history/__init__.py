"""Imported history: service-desk exports (CSV, one row per update) turned into records.

`mapping` reads and checks a mapping file (YAML, catalog/schemas/history-mapping.schema.json),
`reader` reads the CSV (plain or zipped) into cases of typed rows, `importer` writes them in
batches. docs/import.md describes the mapping format and every decision.
"""
