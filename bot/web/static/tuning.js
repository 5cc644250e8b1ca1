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
    // Publishing confirms the figures were seen: the button waits for them (or for their failure).
    const publish = document.getElementById("publish");
    if (publish) { publish.disabled = false; publish.removeAttribute("title"); }
  }
  // The versions page right after a publish or a rollback: this process switches within seconds
  // (it polls the database); follow it here so the page needs no reload.
  async function serving() {
    const line = document.getElementById("serving");
    if (!line || line.dataset.switching !== "1") return;
    for (let i = 0; i < 120; i++) {
      await new Promise(function (done) { setTimeout(done, 1000); });
      let state;
      try {
        const resp = await fetch(line.dataset.src, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" });
        if (!resp.ok) continue;
        state = await resp.json();
      } catch (e) {
        continue;
      }
      if (state.served !== state.active) continue;
      document.getElementById("served").textContent = "本进程正在使用 " + (state.served ? "v" + state.served : "数据文件");
      const note = document.getElementById("switching");
      if (note) note.remove();
      line.dataset.switching = "0";
      return;
    }
    const note = document.getElementById("switching");
    if (note) { note.classList.remove("loading"); note.textContent = "（还没有切换过来，请稍后刷新页面；若一直如此，请查看服务日志）"; }
  }
  document.addEventListener("DOMContentLoaded", figures);
  document.addEventListener("DOMContentLoaded", serving);
})();
