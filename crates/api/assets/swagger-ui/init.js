// Swagger UI for this server's own OpenAPI document; nothing is loaded from
// elsewhere (validatorUrl: null turns off the online validator badge).
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  tryItOutEnabled: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
