// The tuning loop's evaluation page: the figures are computed on the server in a worker thread
// (training the draft takes seconds), so the page comes at once and fetches them here.
"use strict";
(function () {
  async function figures() {
    const box = document.getElementById("figures");
    if (!box || !box.dataset.src) return;
    try {
      const resp = await fetch(box.dataset.src, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" });
      box.innerHTML = resp.ok ? await resp.text() : '<p class="error">评估失败，请刷新重试。</p>';
    } catch (e) {
      box.innerHTML = '<p class="error">网络异常，请刷新重试。</p>';
    }
    box.setAttribute("aria-busy", "false");
    box.dataset.loaded = "1";
  }
  document.addEventListener("DOMContentLoaded", figures);
})();
