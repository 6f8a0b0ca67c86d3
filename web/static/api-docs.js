// Swagger UI on the API's description; a file, not an inline script (the CSP forbids those).
// Swagger UI 4.15 (swagger-ui-bundle) reads OpenAPI 3.0 only: /api/docs/openapi-3.0.json is
// derived from /api/v1/openapi.json (3.1) on every call (web/api/downgrade.py).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/docs/openapi-3.0.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout"
  });
});
