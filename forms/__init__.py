"""Field model -> WTForms classes (HTML), JSON Schema (API) and browser rules.

`answers.clean_answers` is the one server-side pipeline from submitted data to
clean answers; `wtf`, `jsonschema` and `client` describe the same fields to
WTForms, API clients and the browser script.
"""
