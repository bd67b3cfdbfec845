// shardgate dashboard: the user list of one database, over the JSON API.
// Data is inserted with textContent only (never innerHTML).
(function () {
  "use strict";

  const root = document.getElementById("users-app");
  if (!root) return;
  const database = root.dataset.database;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const base = "/api/databases/" + encodeURIComponent(database) + "/users";

  const $ = (id) => document.getElementById(id);
  const tbody = $("users-body");

  function showError(element, message) {
    element.textContent = message || "";
    element.hidden = !message;
  }

  async function call(method, path, body) {
    const options = {
      method: method,
      credentials: "same-origin",
      headers: { "Accept": "application/json" },
    };
    if (method !== "GET") {
      options.headers["X-CSRF-Token"] = csrf;
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body || {});
    }
    let response;
    try {
      response = await fetch(base + path, options);
    } catch (e) {
      throw new Error("The server could not be reached. Check your connection and try again.");
    }
    if (response.status === 401) {
      window.location.assign("/login");
      throw new Error("Your session has ended; please sign in again.");
    }
    let data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    if (!response.ok) {
      throw new Error(data.error || "The request failed (HTTP " + response.status + ").");
    }
    return data;
  }

  function pill(value, yes, no, cls) {
    const span = document.createElement("span");
    span.className = "pill " + (value ? (cls || "yes") : "no");
    span.textContent = value ? yes : no;
    return span;
  }

  function cell(row, className, content) {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (typeof content === "string") td.textContent = content; else if (content) td.appendChild(content);
    row.appendChild(td);
    return td;
  }

  function menuFor(user) {
    const details = document.createElement("details");
    details.className = "menu";
    const summary = document.createElement("summary");
    summary.textContent = "…";
    summary.setAttribute("aria-label", "Actions for " + user.username);
    summary.title = "Actions";
    details.appendChild(summary);
    const items = document.createElement("div");
    items.className = "menu-items";
    items.setAttribute("role", "menu");
    const reset = document.createElement("button");
    reset.type = "button";
    reset.setAttribute("role", "menuitem");
    reset.textContent = "Reset password";
    reset.addEventListener("click", () => { details.open = false; askReset(user); });
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "danger-text";
    remove.setAttribute("role", "menuitem");
    remove.textContent = "Delete user";
    remove.addEventListener("click", () => { details.open = false; askDelete(user); });
    items.append(reset, remove);
    details.appendChild(items);
    details.addEventListener("toggle", () => {
      if (details.open) {
        document.querySelectorAll("details.menu[open]").forEach((d) => { if (d !== details) d.open = false; });
      }
    });
    return details;
  }

  function render(users) {
    tbody.replaceChildren();
    if (users.length === 0) {
      const tr = document.createElement("tr");
      const td = cell(tr, "muted", "No users yet.");
      td.colSpan = 5;
      tbody.appendChild(tr);
      return;
    }
    for (const user of users) {
      const tr = document.createElement("tr");
      tr.dataset.username = user.username;
      tr.dataset.host = user.host;
      cell(tr, "name", user.username);
      cell(tr, "host", user.host);
      cell(tr, "", pill(user.read_only, "Yes", "No"));
      cell(tr, "", pill(user.protected, "Protected", "No", "protected"));
      cell(tr, "row-actions", user.protected ? null : menuFor(user));
      tbody.appendChild(tr);
    }
  }

  async function refresh() {
    try {
      const data = await call("GET", "");
      render(data.users);
      showError($("page-error"), "");
    } catch (e) {
      showError($("page-error"), e.message);
    }
  }

  // --- dialogs -------------------------------------------------------------------------

  document.querySelectorAll("dialog [data-close]").forEach((button) => {
    button.addEventListener("click", () => button.closest("dialog").close());
  });

  function showPassword(title, password) {
    $("password-title").textContent = title;
    $("password-value").value = password;
    $("copy-status").textContent = "";
    $("password-dialog").showModal();
    $("password-value").select();
  }

  $("password-dialog").addEventListener("close", () => {
    $("password-value").value = "";  // shown once: gone when the dialog closes
  });

  $("copy-password").addEventListener("click", async () => {
    const field = $("password-value");
    let copied = false;
    try {
      await navigator.clipboard.writeText(field.value);
      copied = true;
    } catch (e) {
      field.select();
      try { copied = document.execCommand("copy"); } catch (e2) { copied = false; }
    }
    $("copy-status").textContent = copied ? "Copied to the clipboard." : "Select the password and copy it.";
  });

  // Add a user
  $("add-user").addEventListener("click", () => {
    $("add-form").reset();
    showError($("add-error"), "");
    $("add-dialog").showModal();
    $("new-username").focus();
  });

  $("add-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = $("new-username").value.trim();
    if (!username) { showError($("add-error"), "Enter a username."); return; }
    const submit = $("add-submit");
    submit.disabled = true;
    try {
      const data = await call("POST", "", { username: username, read_only: !$("new-write").checked });
      $("add-dialog").close();
      await refresh();
      showPassword('User "' + data.user.username + '" created', data.password);
    } catch (e) {
      showError($("add-error"), e.message);
    } finally {
      submit.disabled = false;
    }
  });

  // Confirm by typing the user's name (reset password, delete user)
  let pending = null;

  function askConfirm(user, title, text, action) {
    pending = { user: user, action: action };
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    $("confirm-name").textContent = user.username;
    $("confirm-input").value = "";
    $("confirm-submit").disabled = true;
    showError($("confirm-error"), "");
    $("confirm-dialog").showModal();
    $("confirm-input").focus();
  }

  $("confirm-input").addEventListener("input", () => {
    $("confirm-submit").disabled = !pending || $("confirm-input").value !== pending.user.username;
  });

  $("confirm-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!pending || $("confirm-input").value !== pending.user.username) return;
    const submit = $("confirm-submit");
    submit.disabled = true;
    try {
      await pending.action(pending.user, $("confirm-input").value);
      $("confirm-dialog").close();
      pending = null;
    } catch (e) {
      showError($("confirm-error"), e.message);
      submit.disabled = false;
    }
  });

  function askReset(user) {
    askConfirm(user, "Reset the password of " + user.username,
      "A new password is generated; the current one stops working at once.",
      async (u, typed) => {
        const data = await call("POST", "/" + encodeURIComponent(u.username) + "/reset-password",
          { confirm: typed, host: u.host });
        $("confirm-dialog").close();
        showPassword('New password for "' + u.username + '"', data.password);
      });
  }

  function askDelete(user) {
    askConfirm(user, "Delete user " + user.username,
      "The user is removed with all its privileges; open connections lose access at once.",
      async (u, typed) => {
        await call("DELETE", "/" + encodeURIComponent(u.username), { confirm: typed, host: u.host });
        await refresh();
      });
  }

  document.addEventListener("click", (event) => {
    if (!event.target.closest("details.menu")) {
      document.querySelectorAll("details.menu[open]").forEach((d) => { d.open = false; });
    }
  });

  refresh();
})();
