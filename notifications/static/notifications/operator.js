// The operator's admin, live: rows of the notification list that are still on their way, a
// campaign's progress bar, a contact's test. Every text comes translated from the server.
"use strict";
(function () {
  const LIVE = new Set(["pending", "scheduled", "queued", "sending"]);
  const POLL_MS = 1500;

  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)));
  }

  function setCells(id, cells) {
    document.querySelectorAll(`[data-nf-id="${id}"][data-nf-cell]`).forEach((cell) => {
      const name = cell.dataset.nfCell;
      if (!(name in cells)) return;
      if (name === "status") {
        const badge = document.createElement("template");
        badge.innerHTML = cells.status.trim();
        const fresh = badge.content.firstElementChild;
        cell.className = fresh.className;
        cell.textContent = fresh.textContent;
      } else {
        cell.textContent = cells[name];
      }
    });
  }

  // The notification list: poll the rows whose status is still moving.
  function pollList(url) {
    const ids = Array.from(document.querySelectorAll('[data-nf-cell="status"][data-nf-status]'))
      .filter((badge) => LIVE.has(badge.dataset.nfStatus))
      .map((badge) => badge.dataset.nfId);
    if (!ids.length) return;
    getJSON(`${url}?ids=${ids.join(",")}`).then((data) => {
      for (const [id, state] of Object.entries(data.notifications)) {
        setCells(id, state.cells);
        document.querySelectorAll(`[data-nf-id="${id}"][data-nf-cell="status"]`)
          .forEach((badge) => { badge.dataset.nfStatus = state.status; });
      }
    }).finally(() => setTimeout(() => pollList(url), POLL_MS));
  }

  // A campaign's page: the progress bar, its figures and the fields below move together.
  function pollProgress(box) {
    getJSON(box.dataset.nfProgress).then((data) => {
      const bar = box.querySelector(".nf-progress");
      bar.value = data.percent;
      bar.setAttribute("aria-valuenow", data.percent);
      for (const [key, text] of Object.entries(data.text)) {
        box.querySelectorAll(`[data-nf-text="${key}"]`).forEach((el) => { el.textContent = text; });
      }
      for (const [name, text] of Object.entries(data.fields || {})) {
        document.querySelectorAll(`.field-${name} .readonly`).forEach((el) => { el.textContent = text; });
      }
      if (!data.cancellable) document.querySelectorAll("[data-nf-cancel]").forEach((form) => form.remove());
      box.dataset.nfDone = data.done ? "true" : "false";
      if (data.done) refreshForm(); else setTimeout(() => pollProgress(box), POLL_MS);
    }, () => setTimeout(() => pollProgress(box), POLL_MS * 4));
  }

  // Once a campaign is done, the rest of its page (the skipped recipients, every field) is
  // read again and put in place, with no reload.
  function refreshForm() {
    const form = document.querySelector("#content-main form[id$='_form']");
    if (!form) return;
    fetch(window.location.href, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => {
        const fresh = new DOMParser().parseFromString(html, "text/html").getElementById(form.id);
        if (fresh) form.replaceWith(document.adoptNode(fresh));
      });
  }

  // A contact's "Send a test": create it, then follow it until a channel took it (or none).
  function sendTest(form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const result = form.querySelector("[data-nf-test-result]");
      const button = form.querySelector("button");
      button.disabled = true;
      fetch(form.action, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: { Accept: "application/json" },
      }).then((response) => response.json()).then((data) => {
        if (data.error) { result.textContent = data.error; button.disabled = false; return; }
        const link = document.createElement("a");
        link.href = data.url;
        link.textContent = `#${data.id}`;
        result.replaceChildren(link, " ", document.createElement("span"));
        const follow = () => getJSON(`${form.dataset.nfStates}?ids=${data.id}`).then((states) => {
          const state = states.notifications[data.id];
          result.querySelector("span").textContent = state.summary;
          result.dataset.nfStatus = state.status;
          if (state.live) setTimeout(follow, POLL_MS); else button.disabled = false;
        });
        follow();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const list = document.querySelector("[data-nf-poll-list]");
    if (list) setTimeout(() => pollList(list.dataset.nfPollList), POLL_MS);
    const box = document.querySelector("[data-nf-progress]");
    if (box && box.dataset.nfDone !== "true") setTimeout(() => pollProgress(box), POLL_MS);
    document.querySelectorAll("form[data-nf-send-test]").forEach(sendTest);
    document.querySelectorAll("[data-nf-select-on-focus]").forEach((input) => {
      input.addEventListener("focus", () => input.select());
    });
  });
})();
