"""Field model -> WTForms classes (HTML), JSON Schema (API) and browser rules.

`answers.clean_answers` turns submitted data into typed values and runs the one
pipeline, `catalog.answers.check_answers`; `wtf`, `jsonschema` and `client`
describe the same fields to WTForms, API clients and the browser script.
"""
