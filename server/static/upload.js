// The upload page: send the form to POST /api/studies with the token as a bearer header, show the answer.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("upload");
  const result = document.getElementById("upload-result");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const token = String(data.get("token") || "");
    data.delete("token");
    if (!data.get("study_id")) data.delete("study_id");
    result.textContent = "uploading …";
    result.className = "";
    try {
      const response = await fetch("/api/studies", {method: "POST", body: data,
                                                      headers: {"Authorization": "Bearer " + token}});
      const body = await response.json().catch(() => ({}));
      if (response.ok) {
        result.textContent = `Loaded study '${body.study_id}' (${body.counts ? (body.counts.CODED_AS || 0) : 0} codings).`;
        if (Array.isArray(body.warnings) && body.warnings.length) {
          result.textContent += " Warnings: " + body.warnings.join("; ");
        }
      } else {
        const error = body.error || {};
        const details = Array.isArray(error.details) && error.details.length ? " — " + error.details.join("; ") : "";
        result.textContent = `Error ${response.status}: ${error.message || response.statusText}${details}`;
        result.className = "error";
      }
    } catch (failure) {
      result.textContent = "The upload did not reach the server: " + failure;
      result.className = "error";
    }
  });
});
