// Swagger UI served from the installed swagger-ui-py package (no CDN).
// Calls made from the page carry the console session cookie; changes need the
// X-CSRF-Token header, so use a Bearer token (Authorize button) for POSTs.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
