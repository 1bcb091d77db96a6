// The auditor's uploads: the chosen file goes as the raw request body with the page's CSRF token in a header;
// the server answers a verdict fragment, put in place here. Everything else on the desk works without script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const csrf = document.querySelector("main").dataset.csrf;
  for (const form of document.querySelectorAll("form.verify")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const file = form.querySelector("input[type=file]").files[0];
      const target = document.getElementById(form.dataset.target);
      if (!file) return;
      const region = form.querySelector("select[name=region]");
      const url = form.dataset.url + (region ? "?region=" + encodeURIComponent(region.value) : "");
      target.textContent = "…";
      const response = await fetch(url, {
        method: "POST", body: await file.arrayBuffer(), credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, "Content-Type": "application/octet-stream", "Accept": "text/html" },
      });
      const text = await response.text();
      if (response.headers.get("content-type", "").startsWith("text/html") && response.ok) {
        target.innerHTML = text;  // the server's own fragment, every value escaped by Jinja
      } else {
        const doc = new DOMParser().parseFromString(text, "text/html");
        const message = doc.querySelector(".bad");
        target.innerHTML = "";
        const p = document.createElement("p");
        p.className = "bad";
        p.textContent = response.status + ": " + (message ? message.textContent : text.slice(0, 300));
        target.appendChild(p);
      }
    });
  }
});
