// dom.js: builds elements from data without ever parsing it as HTML.

/** `el("li", {class: "x"}, "text", child)`: attributes, then text or nodes. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value == null) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child != null));
  return node;
}

/** The element with this id (the page's fixed skeleton, index.html). */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`index.html has no #${id}`);
  return node;
}

/** Shows `text` in a status line, or hides it when empty. */
export function say(node, text) {
  node.textContent = text ?? "";
  node.hidden = !text;
}

/** Seconds left until an ISO instant, never negative. */
export function secondsUntil(iso, now = Date.now()) {
  return Math.max(0, Math.ceil((Date.parse(iso) - now) / 1000));
}
