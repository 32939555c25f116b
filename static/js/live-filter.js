// Filter forms (templates/_macros/forms.html, live_filter_attrs) search as soon as a
// dropdown or checkbox changes; text fields search on Enter only, once. The choice of
// which changes count lives here, not in an hx-trigger filter: htmx evaluates those as
// code, which the Content-Security-Policy (no 'unsafe-eval') rightly refuses.
document.addEventListener("change", (event) => {
  const field = event.target;
  const form = field.closest && field.closest("form[data-live-filter]");
  if (!form || !window.htmx) return;
  if (field.tagName === "SELECT" || field.type === "checkbox") {
    window.htmx.trigger(form, "filter-changed");
  }
});
