// The console's live parts: server-sent events refresh lists and conversations, notices pop up;
// the merchant page verifies through the JSON API with the session's CSRF token. No framework.
"use strict";
(function () {
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const page = document.body.dataset.page;

  async function refresh(id) {
    const el = document.getElementById(id);
    if (!el || !el.dataset.src) return;
    const resp = await fetch(el.dataset.src, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" });
    if (!resp.ok) return;
    const before = new Set([...el.querySelectorAll("[data-resident]")].map((r) => r.dataset.resident));
    const stick = el.scrollTop + el.clientHeight >= el.scrollHeight - 30;
    el.innerHTML = await resp.text();
    el.querySelectorAll("[data-resident]").forEach((r) => { if (!before.has(r.dataset.resident)) r.classList.add("fresh"); });
    if (id === "messages" && stick) el.scrollTop = el.scrollHeight;
  }

  // A page fetched again and parsed: tickets refresh from their own pages, so what staff see live
  // is what a reload shows (same filters, same permissions).
  async function fetchPage(url, refused) {
    const resp = await fetch(url, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" });
    if (resp.status === 403 && refused) refused();
    if (!resp.ok || resp.redirected) return null;
    return new DOMParser().parseFromString(await resp.text(), "text/html");
  }

  // One refresh at a time; events arriving meanwhile make one more afterwards.
  function serial(fn) {
    let running = false, again = false;
    return async () => {
      if (running) { again = true; return; }
      running = true;
      try { do { again = false; await fn(); } while (again); } finally { running = false; }
    };
  }

  const refreshTickets = serial(async () => {
    const body = document.querySelector("#ticket-list tbody");
    if (!body) return;
    const doc = await fetchPage(location.pathname + location.search);
    const fresh = doc && doc.querySelector("#ticket-list tbody");
    if (!fresh) return;
    const before = new Map([...body.querySelectorAll("tr[data-ticket]")].map((r) => [r.dataset.ticket, r.dataset.state]));
    body.replaceWith(fresh);
    fresh.querySelectorAll("tr[data-ticket]").forEach((r) => { if (before.get(r.dataset.ticket) !== r.dataset.state) r.classList.add("fresh"); });
    const more = document.getElementById("ticket-more");
    const newMore = doc.getElementById("ticket-more");
    if (more && newMore) more.replaceWith(newMore);
  });

  // The form staff have started filling in on a ticket's page is never replaced under them; a
  // page that came back with an error keeps its form as sent too.
  let ticketDirty = false;

  const refreshTicket = serial(async () => {
    const main = document.getElementById("ticket-main");
    if (!main) return;
    // The ticket's own address: a refused form's page is at the form's (POST-only) address.
    const notice = document.getElementById("ticket-changed");
    const doc = await fetchPage("/console/tickets/" + encodeURIComponent(document.body.dataset.ticket), () => {
      notice.textContent = "这张工单已经转给其他部门，您不能再处理它了。";
      notice.hidden = false;
      const side = document.getElementById("ticket-side");
      if (side) side.hidden = true;
    });
    const newMain = doc && doc.getElementById("ticket-main");
    if (!newMain || newMain.dataset.version === main.dataset.version) return;
    const seen = new Set([...main.querySelectorAll("[data-event]")].map((e) => e.dataset.event));
    main.replaceWith(newMain);
    newMain.querySelectorAll("[data-event]").forEach((e) => { if (!seen.has(e.dataset.event)) e.classList.add("fresh"); });
    const head = document.getElementById("ticket-head");
    const newHead = doc.getElementById("ticket-head");
    if (head && newHead) head.replaceWith(newHead);
    const side = document.getElementById("ticket-side");
    const newSide = doc.getElementById("ticket-side");
    if (!side || !newSide || side.dataset.state === newSide.dataset.state) return;
    const status = (newHead && newHead.querySelector("#ticket-status")) || {};
    if (ticketDirty || document.getElementById("error")) {
      notice.textContent = "这张工单刚刚有了变化（现在：" + (status.textContent || "") + "），您填写的内容还没有提交。请核对后再提交，或刷新页面看能做的操作。";
      notice.hidden = false;
      return;
    }
    side.replaceWith(newSide);
    ticket();
    notice.textContent = "这张工单刚刚有了变化（现在：" + (status.textContent || "") + "），可以做的操作已经更新。";
    notice.hidden = false;
  });

  // Who holds the conversation (a colleague claims or releases it, the idle job gives it back to
  // the bot): the status line, the claim or release button and the reply form follow without a
  // reload. A reply being written when the user may no longer send it is kept, disabled, to copy.
  const refreshClaim = serial(async () => {
    const status = document.getElementById("claim-status");
    if (!status) return;
    const url = "/console/conversations/" + encodeURIComponent(document.body.dataset.resident) + "/claim-state";
    const resp = await fetch(url, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" });
    if (!resp.ok || resp.redirected) return;
    const doc = new DOMParser().parseFromString("<body>" + await resp.text() + "</body>", "text/html");
    const newStatus = doc.getElementById("claim-status");
    if (!newStatus) return;
    const before = status.dataset.holder, after = newStatus.dataset.holder;
    status.replaceWith(newStatus);
    const actions = document.getElementById("claim-actions");
    const newActions = doc.getElementById("claim-actions");
    if (actions && newActions) actions.replaceWith(newActions);
    const area = document.getElementById("reply-area");
    const newArea = doc.getElementById("reply-area");
    const text = document.getElementById("reply-text");
    const draft = text ? text.value.trim() : "";
    let kept = false;
    // Unchanged (a resident's message, the same holder): the box being typed in keeps its focus.
    if (area && newArea && area.dataset.state !== newArea.dataset.state) {
      const newText = newArea.querySelector("#reply-text");
      if (newText && text && text.value) newText.value = text.value;
      if (newText || !draft) {
        area.replaceWith(newArea);
        bindReply();
      } else {
        kept = true;
        area.querySelectorAll("textarea, select, button").forEach((el) => { el.disabled = true; });
        const old = area.querySelector("#reply-off");
        if (old) old.remove();
        const why = newArea.querySelector("#reply-off");
        if (why) area.prepend(why);
      }
    }
    if (before === after) return;
    const notice = document.getElementById("claim-changed");
    if (!notice) return;
    const unsent = kept ? "您写的回复没有发出，保留在下面，可以复制。" : "";
    if (after && newStatus.dataset.mine) notice.textContent = "您已接管这个会话，可以回复居民。";
    else if (after) notice.textContent = after + " 刚刚接管了这个会话，机器人暂停回复。" + unsent;
    else notice.textContent = "这个会话刚刚交还给机器人，机器人会继续回复居民。" + unsent;
    notice.hidden = false;
  });

  function toast(text) {
    const box = document.getElementById("toasts");
    if (!box) return;
    const t = document.createElement("div");
    t.className = "toast";
    t.textContent = text;
    box.appendChild(t);
    setTimeout(() => t.remove(), 8000);
  }

  function count(id, n) {
    const b = document.getElementById(id);
    if (!b || typeof n !== "number") return;
    b.hidden = n <= 0;
    b.textContent = String(n);
  }

  function bump(id) {
    const b = document.getElementById(id);
    if (!b) return;
    b.hidden = false;
    b.textContent = String((parseInt(b.textContent || "0", 10) || 0) + 1);
  }

  function live() {
    if (!window.EventSource || page === "merchant" || !document.querySelector(".nav a[href='/console/handoffs']")) return;
    const source = new EventSource("/console/events");
    source.addEventListener("ready", async (event) => {
      const counts = JSON.parse(event.data || "{}");
      count("handoff-count", counts.waiting);
      count("notice-count", counts.unread);
      // What changed between rendering the page and this stream's start is not in the stream:
      // fetch the live lists once, then follow the events.
      if (page === "conversation") { await refresh("messages"); await refreshClaim(); }
      if (page === "inbox") await refresh("inbox-rows");
      if (page === "handoffs") await refresh("handoff-rows");
      if (page === "tickets") await refreshTickets();
      if (page === "ticket") await refreshTicket();
      document.body.dataset.live = "1";
    });
    source.addEventListener("handoff", (event) => {
      count("handoff-count", JSON.parse(event.data || "{}").waiting);  // residents waiting now
      if (page === "handoffs") refresh("handoff-rows");
    });
    source.addEventListener("message", (event) => {
      const data = JSON.parse(event.data);
      if (page === "inbox") refresh("inbox-rows");
      if (page === "conversation" && data.residents.map(String).includes(document.body.dataset.resident)) {
        refresh("messages");
        refreshClaim();  // a resident's message reopens WeChat's 48-hour window
      }
    });
    source.addEventListener("takeover", (event) => {
      const ids = (JSON.parse(event.data || "{}").residents || []).map(String);
      if (page === "inbox") refresh("inbox-rows");
      if (page === "conversation" && ids.includes(document.body.dataset.resident)) refreshClaim();
    });
    // A refused reconnection (the session ended: logout elsewhere, expiry) closes the stream for
    // good; a dropped connection (a restart) reconnects by itself. Say so rather than go stale.
    source.addEventListener("error", () => {
      if (source.readyState !== EventSource.CLOSED || document.getElementById("live-lost")) return;
      const note = document.createElement("p");
      note.id = "live-lost";
      note.className = "warn";
      note.setAttribute("role", "alert");
      note.append("页面已停止自动更新，登录可能已过期。");
      const link = document.createElement("a");
      link.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
      link.textContent = "重新登录";
      note.append(link);
      const main = document.querySelector("main");
      if (main) main.prepend(note);
    });
    source.addEventListener("ticket", (event) => {
      const ids = (JSON.parse(event.data || "{}").tickets || []).map(String);
      if (page === "tickets") refreshTickets();
      if (page === "ticket" && ids.includes(document.body.dataset.ticket)) refreshTicket();
    });
    source.addEventListener("notification", (event) => {
      const data = JSON.parse(event.data);
      toast(data.text);
      bump("notice-count");
    });
  }

  function conversation() {
    const list = document.getElementById("messages");
    if (list) list.scrollTop = list.scrollHeight;
    bindReply();
  }

  function bindReply() {
    const canned = document.getElementById("canned-select");
    const text = document.getElementById("reply-text");
    if (canned && text) canned.addEventListener("change", () => { if (canned.value) { text.value = canned.value; text.focus(); } });
  }

  function ticket() {
    const side = document.getElementById("ticket-side");
    if (side) {
      const dirty = () => { ticketDirty = true; };
      side.addEventListener("input", dirty);
      side.addEventListener("change", dirty);
    }
    const select = document.getElementById("action");
    if (!select) return;
    const show = () => {
      document.querySelectorAll("[data-for]").forEach((el) => {
        el.style.display = el.dataset.for === select.value ? "contents" : "none";
      });
      // Whether the resident reads the 说明 (data-note on each action, from the server).
      const told = select.selectedOptions[0]?.dataset.note === "told";
      const toldHint = document.getElementById("note-told");
      const keptHint = document.getElementById("note-kept");
      if (toldHint) toldHint.hidden = !told;
      if (keptHint) keptHint.hidden = told;
    };
    select.addEventListener("change", show);
    show();
  }

  function merchant() {
    const form = document.getElementById("verify");
    const result = document.getElementById("result");
    const code = document.getElementById("code");
    if (!form) return;
    // A result stays only beside the code it is for: typing the next code takes it away.
    code.addEventListener("input", () => { result.hidden = true; });
    // The form checks the code itself (novalidate): the browser's own bubbles speak its language, not the page's.
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = code.value.trim();
      if (!value) { show(false, "请输入顾客出示的券码。"); code.focus(); return; }
      if (value.length < 4) { show(false, "请输入完整的券码（至少4位）。"); code.focus(); return; }
      const button = form.querySelector("button");
      button.disabled = true;
      try {
        const resp = await fetch("/api/v1/mall/verify", {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
          body: JSON.stringify({ code: value }),
        });
        const data = await resp.json().catch(() => ({}));
        if (resp.ok) {
          show(data.status === "used", data.message || "已处理。");
          if (data.status === "used") { code.value = ""; refresh("today"); }
        } else if (resp.status === 401) {
          location.href = "/login?next=%2Fmerchant";
        } else {
          show(false, refusal(resp.status, data.error || {}));
        }
      } catch (e) {
        show(false, "网络异常，请检查网络后重试。");
      } finally {
        button.disabled = false;
      }
    });
    function show(ok, text) { result.hidden = false; result.className = ok ? "ok" : "bad"; result.textContent = text; }
    // The API's refusals are for programs (English, but for the rate limit's): said here in Chinese.
    function refusal(status, error) {
      const words = {
        csrf: "页面已过期，请刷新页面后再核销。",
        not_a_merchant: "这个账号没有关联商户，请联系社区管理员。",
        forbidden: "这个账号不能核销优惠券，请用商户账号登录。",
        invalid_body: "券码格式不对：请输入4到32位的字母、数字或短横线。",
        bad_request: "券码格式不对：请输入4到32位的字母、数字或短横线。",
      };
      if (words[error.code]) return words[error.code];
      if (/[\u4e00-\u9fff]/.test(error.message || "")) return error.message;
      return status >= 500 ? "系统出错了，请稍后再试。" : "核销失败，请刷新页面后再试。";
    }
  }

  // Required fields and their formats are checked here, in the page's words: the browser's own
  // bubbles speak its language (English in many browsers) and name no field. The server checks
  // again and answers a refusal naming the field; this only saves the round trip.
  function fieldName(el) {
    let text = el.dataset.label || el.getAttribute("aria-label") || "";
    if (!text && el.type === "radio") {
      const set = el.closest("fieldset");
      const legend = set && set.querySelector("legend");
      text = legend ? legend.textContent : "";
    }
    if (!text && el.id) {
      const label = document.querySelector('label[for="' + el.id + '"]');
      if (label) text = label.textContent;
    }
    if (!text && el.closest("label") && el.type !== "radio" && el.type !== "checkbox") {
      const label = el.closest("label").cloneNode(true);
      label.querySelectorAll("input, select, textarea, .field-error").forEach((c) => c.remove());
      text = label.textContent;
    }
    // 初始密码（至少8位） -> 初始密码: the hint in brackets is not the field's name.
    return text.replace(/[（(][^）)]*[）)]/g, "").replace(/[：:*]/g, "").trim() || "这一项";
  }

  // data-required: needed only for one choice of the form (shown with it), so never the browser's
  // required; data-unless names a field that does instead; data-missing is the message.
  function problem(el) {
    const v = el.validity, name = fieldName(el);
    const other = el.dataset.unless && document.getElementById(el.dataset.unless);
    const needed = (el.required || el.hasAttribute("data-required")) && !(other && other.value.trim());
    const blank = needed && el.type !== "radio" && el.type !== "checkbox" && !el.value.trim();
    if (v.valueMissing || blank) {
      if (el.dataset.missing) return el.dataset.missing;
      if (el.type === "checkbox") return "请先勾选“" + name + "”。";
      if (el.type === "radio" || el.tagName === "SELECT" || el.type === "date") return "请选择" + name + "。";
      return "请填写" + name + "。";
    }
    if (v.badInput) return el.type === "date" ? name + "不是有效的日期。" : name + "的格式不对。";
    if (v.tooShort) return name + "至少" + el.minLength + "个字符，现在是" + el.value.length + "个。";
    if (v.tooLong) return name + "最多" + el.maxLength + "个字符。";
    if (v.rangeUnderflow) return name + "不能小于" + el.min + "。";
    if (v.rangeOverflow) return name + "不能大于" + el.max + "。";
    if (el.inputMode === "numeric" && el.value.trim() && !/^[0-9]+$/.test(el.value.trim())) return name + "只能填数字。";
    if (v.patternMismatch || v.typeMismatch || v.stepMismatch) return name + "的格式不对" + (el.title ? "：" + el.title : "。");
    // inputmode="numeric" fields are text: their min and max are checked here.
    if (el.inputMode === "numeric" && /^[0-9]+$/.test(el.value)) {
      const n = parseInt(el.value, 10);
      if (el.getAttribute("min") && n < Number(el.getAttribute("min"))) return name + "不能小于" + el.getAttribute("min") + "。";
      if (el.getAttribute("max") && n > Number(el.getAttribute("max"))) return name + "不能大于" + el.getAttribute("max") + "。";
    }
    return "";
  }

  function clearProblem(el) {
    const box = el.type === "radio" && el.form ? el.form : document;
    const same = el.type === "radio" ? [...box.querySelectorAll('input[type="radio"]')].filter((r) => r.name === el.name) : [el];
    same.forEach((r) => {
      r.removeAttribute("aria-invalid");
      if (r.dataset.problem) { const p = document.getElementById(r.dataset.problem); if (p) p.remove(); delete r.dataset.problem; }
    });
  }

  let problemSeq = 0;
  function showProblem(el, text) {
    clearProblem(el);
    const note = document.createElement("p");
    note.className = "field-error";
    note.id = "field-error-" + (++problemSeq);
    note.setAttribute("role", "alert");
    note.textContent = text;
    // After the field, or after the label holding it; a radio group's after its last choice.
    let anchor = el.closest("label") || el;
    if (el.type === "radio" && el.form) {
      const group = [...el.form.querySelectorAll('input[type="radio"]')].filter((r) => r.name === el.name);
      const last = group[group.length - 1];
      anchor = last.closest("label") || last;
    }
    anchor.after(note);
    el.setAttribute("aria-invalid", "true");
    el.setAttribute("aria-describedby", note.id);
    el.dataset.problem = note.id;
  }

  function checkForm(form) {
    let first = null;
    const seen = new Set();
    form.querySelectorAll("input, select, textarea").forEach((el) => {
      if (el.disabled || el.type === "hidden" || !el.willValidate) return;
      if (el.type === "radio") { if (seen.has(el.name)) return; seen.add(el.name); }
      // A part of the form hidden for another choice (the ticket's 派单 fields while 答复) is not sent for it.
      if (el.offsetParent === null && el.type !== "radio" && el.type !== "checkbox" && getComputedStyle(el).position !== "fixed") {
        clearProblem(el);
        return;
      }
      // A Chinese input method in full-width mode types １０ for 10: the same number, sent in ASCII.
      if (el.inputMode === "numeric" && /[\uff10-\uff19]/.test(el.value)) {
        el.value = el.value.replace(/[\uff10-\uff19]/g, (d) => String.fromCharCode(d.charCodeAt(0) - 0xfee0));
      }
      const text = problem(el);
      if (text) { showProblem(el, text); if (!first) first = el; } else clearProblem(el);
    });
    if (first) first.focus();
    return !first;
  }

  // On a phone a list's rows are cards without the table's head: each cell is labelled with its
  // column's heading (data-label, shown before it) unless its template did so already; fetched
  // parts (the tuning figures, refreshed rows) too.
  function labelCells() {
    document.querySelectorAll("table.list").forEach((table) => {
      const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
      if (!heads.length) return;
      table.querySelectorAll("tbody tr").forEach((tr) => {
        [...tr.children].forEach((cell, i) => {
          if (cell.tagName === "TD" && !cell.hasAttribute("data-label") && !cell.hasAttribute("colspan") && heads[i]) {
            cell.dataset.label = heads[i];
          }
        });
      });
    });
  }

  function settle() {
    document.querySelectorAll("form:not([novalidate])").forEach((form) => { form.noValidate = true; });
    labelCells();
  }
  settle();
  new MutationObserver(settle).observe(document.documentElement, { childList: true, subtree: true });
  const typed = (event) => {
    const el = event.target;
    if (el.dataset && (el.dataset.problem || el.type === "radio")) clearProblem(el);
  };
  document.addEventListener("input", typed, true);
  document.addEventListener("change", typed, true);
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.id === "verify") return;  // the merchant's page says its own words
    if (event.submitter && event.submitter.formNoValidate) return;
    if (!checkForm(form)) { event.preventDefault(); event.stopImmediatePropagation(); }
  }, true);

  // A button that loses work for good (清空草稿, 删除) asks first: data-confirm is its question.
  document.addEventListener("submit", (event) => {
    const question = event.submitter && event.submitter.dataset.confirm;
    if (question && !window.confirm(question)) { event.preventDefault(); event.stopImmediatePropagation(); }
  }, true);

  // What an action did (?done=…, ?notice=…) is said once, at the top of the page it reloads: the
  // address loses it, so a reload (or a link copied from it) shows the page as it is.
  function forgetNotice() {
    if (!document.querySelector("p.ok[role=status]")) return;
    const url = new URL(location.href);
    if (!url.searchParams.has("done") && !url.searchParams.has("notice")) return;
    url.searchParams.delete("done");
    url.searchParams.delete("notice");
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  }

  document.addEventListener("DOMContentLoaded", () => {
    forgetNotice();
    live();
    if (page === "conversation") conversation();
    if (page === "ticket") ticket();
    if (page === "merchant") merchant();
    document.body.dataset.ready = "1";
  });
})();
