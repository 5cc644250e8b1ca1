// Resident simulator: sends messages through /simulator/api/send (signed XML to our own /wechat)
// and polls /simulator/api/messages for customer-service messages. No build step, no libraries.
"use strict";

(function () {
  const API = "/simulator/api";
  const POLL_MS = 2000;
  const FAST_POLL_MS = 700;
  const LOG_LIMIT = 200;
  const MODE_NAMES = { plain: "明文模式", compat: "兼容模式", safe: "安全模式" };

  const $ = (id) => document.getElementById(id);
  const store = {
    get(key, fallback) {
      try {
        const value = localStorage.getItem("sim." + key);
        return value === null ? fallback : JSON.parse(value);
      } catch (e) {
        return fallback;
      }
    },
    set(key, value) {
      try { localStorage.setItem("sim." + key, JSON.stringify(value)); } catch (e) { /* private mode */ }
    },
    remove(key) {
      try { localStorage.removeItem("sim." + key); } catch (e) { /* private mode */ }
    },
  };

  const state = {
    config: null,
    openid: "",
    mode: "plain",
    since: 0,
    pollTimer: null,
    fastUntil: 0,
    busy: false,
  };

  function randomOpenid() {
    const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return "o_sim_" + Array.from(bytes, (b) => chars[b % chars.length]).join("");
  }

  // -- rendering ---------------------------------------------------------------------------------

  function scrollDown() {
    const chat = $("chat");
    chat.scrollTop = chat.scrollHeight;
  }

  function bubble(entry, persist) {
    const chat = $("chat");
    if (entry.kind === "note" || entry.kind === "error") {
      const note = document.createElement("div");
      note.className = "note" + (entry.kind === "error" ? " error" : "");
      note.textContent = entry.text;
      chat.appendChild(note);
    } else {
      const row = document.createElement("div");
      row.className = "msg " + (entry.kind === "me" ? "me" : "bot") + (entry.custom ? " custom" : "");
      const avatar = document.createElement("div");
      avatar.className = "avatar";
      avatar.textContent = entry.kind === "me" ? "我" : "助";
      const box = document.createElement("div");
      box.className = "bubble";
      if (entry.custom) {
        const tag = document.createElement("span");
        tag.className = "tag";
        tag.textContent = "客服消息";
        box.appendChild(tag);
        box.appendChild(document.createElement("br"));
      }
      if (entry.image) {
        const img = document.createElement("img");
        img.src = entry.image;
        img.alt = entry.kind === "me" ? "发送的图片" : "收到的图片";
        box.appendChild(img);
      } else {
        box.appendChild(document.createTextNode(entry.text));
      }
      row.appendChild(avatar);
      row.appendChild(box);
      chat.appendChild(row);
    }
    if (persist !== false) {
      const saved = Object.assign({}, entry);
      if (saved.image) {
        delete saved.image;
        saved.text = "[图片]";
      }
      const log = store.get("log." + state.openid, []);
      log.push(saved);
      store.set("log." + state.openid, log.slice(-LOG_LIMIT));
    }
    scrollDown();
  }

  const say = {
    me: (text) => bubble({ kind: "me", text }),
    image: (url) => bubble({ kind: "me", image: url }),
    bot: (text) => bubble({ kind: "bot", text }),
    custom: (text) => bubble({ kind: "bot", text, custom: true }),
    note: (text) => bubble({ kind: "note", text }),
    error: (text) => bubble({ kind: "error", text }, false),
  };

  function renderLog() {
    $("chat").textContent = "";
    for (const entry of store.get("log." + state.openid, [])) bubble(entry, false);
  }

  function renderIdentity() {
    $("identity").textContent = "模拟居民 " + state.openid + " · " + (MODE_NAMES[state.mode] || state.mode);
  }

  // -- talking to the backend -------------------------------------------------------------------

  async function api(path, options) {
    let response;
    try {
      response = await fetch(API + path, options);
    } catch (e) {
      throw new Error("连不上服务，请确认 python -m bot serve --demo 还在运行");
    }
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      throw new Error((data && data.error) || ("请求失败（HTTP " + response.status + "）"));
    }
    return data;
  }

  async function send(payload) {
    if (state.busy) return null;
    state.busy = true;
    $("send-btn").disabled = true;
    try {
      const body = Object.assign({ openid: state.openid, mode: state.mode }, payload);
      const data = await api("/send", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      if (data.reply && data.reply.content) {
        say.bot(data.reply.content);
      } else if (payload.type !== "unsubscribe" && payload.type !== "view") {
        say.note("助手已收到，稍后通过客服消息回复");
      }
      state.fastUntil = Date.now() + 15000;
      schedulePoll(FAST_POLL_MS);
      return data;
    } catch (e) {
      say.error(e.message);
      return null;
    } finally {
      state.busy = false;
      $("send-btn").disabled = false;
    }
  }

  async function poll() {
    state.pollTimer = null;
    if (!state.config || !state.config.fake_api) return;
    try {
      const data = await api("/messages?openid=" + encodeURIComponent(state.openid) + "&since=" + state.since);
      if (data.last_seq < state.since) {
        state.since = 0; // the fake API restarted: its numbering began again
      } else {
        for (const m of data.messages) {
          if (m.image) bubble({ kind: "bot", image: m.image, custom: true });
          else say.custom(m.text);
          state.since = Math.max(state.since, m.seq);
        }
      }
      store.set("seq." + state.openid, state.since);
    } catch (e) {
      /* transient: the next poll tries again */
    }
    schedulePoll(Date.now() < state.fastUntil ? FAST_POLL_MS : POLL_MS);
  }

  function schedulePoll(delay) {
    if (state.pollTimer) clearTimeout(state.pollTimer);
    state.pollTimer = setTimeout(poll, delay);
  }

  // -- identity and mode -------------------------------------------------------------------------

  function useOpenid(openid) {
    state.openid = openid;
    store.set("openid", openid);
    $("openid-input").value = openid;
    state.since = store.get("seq." + openid, 0);
    renderLog();
    renderIdentity();
    schedulePoll(50);
  }

  function setupSettings() {
    const modes = state.config.modes;
    const select = $("mode-select");
    for (const mode of modes) {
      const option = document.createElement("option");
      option.value = mode;
      option.textContent = (MODES_LABEL[mode] || mode);
      select.appendChild(option);
    }
    const saved = store.get("mode", state.config.default_mode);
    state.mode = modes.includes(saved) ? saved : state.config.default_mode;
    select.value = state.mode;
    $("mode-hint").textContent = modes.length > 1
      ? "安全模式：消息加密；兼容模式：明文和密文同时发送；明文模式：不加密。"
      : "服务没有配置 BOT_WECHAT_AES_KEY，只能用明文模式。";
    select.addEventListener("change", () => {
      state.mode = select.value;
      store.set("mode", state.mode);
      renderIdentity();
    });

    $("settings-toggle").addEventListener("click", () => {
      const panel = $("settings");
      panel.hidden = !panel.hidden;
      $("settings-toggle").setAttribute("aria-expanded", String(!panel.hidden));
    });
    const applyOpenid = () => {
      const value = $("openid-input").value.trim();
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(value)) {
        say.error("openid 只能由字母、数字、_ 和 - 组成，最长 64 个字符");
        $("openid-input").value = state.openid;
        return;
      }
      if (value !== state.openid) useOpenid(value);
    };
    for (const known of state.config.openids || []) {
      const option = document.createElement("option");
      option.value = known.openid;
      option.label = known.label;
      $("openid-presets").appendChild(option);
    }
    $("openid-input").addEventListener("change", applyOpenid);
    $("openid-new").addEventListener("click", () => useOpenid(randomOpenid()));
    $("clear-log").addEventListener("click", () => {
      store.remove("log." + state.openid);
      renderLog();
    });
  }

  const MODES_LABEL = {
    plain: "明文模式（plain）",
    compat: "兼容模式（compat）",
    safe: "安全模式（safe，加密）",
  };

  // -- composer, tools and menu ------------------------------------------------------------------

  function closeTools() {
    showForm(null);
    $("tools").hidden = true;
    $("tools-toggle").setAttribute("aria-expanded", "false");
  }

  function showForm(id) {
    for (const form of ["location-form", "voice-form", "subscribe-form"]) {
      $(form).hidden = form !== id || !$(form).hidden;
    }
  }

  function setupComposer() {
    $("composer").addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = $("text-input");
      const text = input.value.trim();
      if (!text) {
        input.focus();
        return;
      }
      say.me(text);
      input.value = "";
      await send({ type: "text", text });
    });
    $("tools-toggle").addEventListener("click", () => {
      const tools = $("tools");
      tools.hidden = !tools.hidden;
      $("tools-toggle").setAttribute("aria-expanded", String(!tools.hidden));
      scrollDown();
    });

    // Image: upload to the fake WeChat API, then send an image message with its media_id.
    $("tool-image").addEventListener("click", () => $("image-file").click());
    $("image-file").addEventListener("change", async () => {
      const file = $("image-file").files[0];
      $("image-file").value = "";
      if (!file) return;
      const limit = state.config.max_image_bytes;
      if (file.size > limit) {
        say.error("图片太大了（最多 " + Math.round(limit / 1048576) + " MB）");
        return;
      }
      try {
        const uploaded = await api("/media?filename=" + encodeURIComponent(file.name), {
          method: "POST",
          headers: { "Content-Type": file.type || "application/octet-stream" },
          body: file,
        });
        say.image(URL.createObjectURL(file));
        if (await send({ type: "image", media_id: uploaded.media_id })) closeTools();
      } catch (e) {
        say.error(e.message);
      }
    });

    // Location with presets.
    const presetSelect = $("loc-preset");
    const presets = state.config.presets.locations || [];
    const fill = (p) => {
      $("loc-lat").value = p.lat;
      $("loc-lng").value = p.lng;
      $("loc-label").value = p.label;
    };
    presets.forEach((p, i) => {
      const option = document.createElement("option");
      option.value = String(i);
      option.textContent = p.label;
      presetSelect.appendChild(option);
    });
    if (presets.length) fill(presets[0]);
    presetSelect.addEventListener("change", () => fill(presets[Number(presetSelect.value)]));
    $("tool-location").addEventListener("click", () => showForm("location-form"));
    $("location-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const lat = $("loc-lat").value.trim();
      const lng = $("loc-lng").value.trim();
      const label = $("loc-label").value.trim();
      say.me("[位置] " + (label || lat + ", " + lng));
      const sent = await send({ type: "location", lat, lng, label });
      if (sent) closeTools();
    });

    // Voice: the text speech recognition would give.
    $("tool-voice").addEventListener("click", () => showForm("voice-form"));
    $("voice-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = $("voice-text").value.trim();
      say.me("[语音] " + (text || "（未识别）"));
      $("voice-text").value = "";
      if (await send({ type: "voice", text })) closeTools();
    });

    // Subscribe (optionally through a QR code's scene) and unsubscribe.
    const scenes = $("scene-presets");
    for (const scene of state.config.presets.scenes || []) {
      const option = document.createElement("option");
      option.value = scene;
      scenes.appendChild(option);
    }
    $("tool-subscribe").addEventListener("click", () => showForm("subscribe-form"));
    $("subscribe-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const scene = $("scene-input").value.trim();
      say.note(scene ? "扫码关注了公众号（场景 " + scene + "）" : "关注了公众号");
      const sent = await send({ type: "subscribe", scene });
      if (sent) closeTools();
    });
    $("tool-unsubscribe").addEventListener("click", async () => {
      say.note("取消关注了公众号");
      if (await send({ type: "unsubscribe" })) closeTools();
    });
  }

  function setupMenu() {
    const nav = $("menu");
    const menu = state.config.menu || [];
    let pop = null;
    const closePop = () => {
      if (pop) pop.remove();
      pop = null;
      nav.querySelectorAll(".menu-top.open").forEach((b) => b.classList.remove("open"));
    };
    menu.forEach((top) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "menu-top";
      button.textContent = (top.sub_button.length > 1 ? "≡ " : "") + top.name;
      button.addEventListener("click", (event) => {
        event.stopPropagation();
        const wasOpen = button.classList.contains("open");
        closePop();
        if (wasOpen) return;
        if (top.sub_button.length === 1 && top.sub_button[0].name === top.name) {
          menuAction(top.sub_button[0]);
          return;
        }
        button.classList.add("open");
        pop = document.createElement("div");
        pop.className = "menu-pop";
        pop.setAttribute("role", "menu");
        for (const sub of top.sub_button) {
          const item = document.createElement("button");
          item.type = "button";
          item.setAttribute("role", "menuitem");
          item.className = sub.type === "view" ? "view" : "";
          item.textContent = sub.name;
          item.addEventListener("click", (e) => {
            e.stopPropagation();
            closePop();
            menuAction(sub);
          });
          pop.appendChild(item);
        }
        nav.appendChild(pop);
        const left = button.offsetLeft + button.offsetWidth / 2 - pop.offsetWidth / 2;
        pop.style.left = Math.max(4, Math.min(left, nav.offsetWidth - pop.offsetWidth - 4)) + "px";
      });
      nav.appendChild(button);
    });
    document.addEventListener("click", closePop);
  }

  async function menuAction(sub) {
    if (sub.type === "click") {
      say.note("点击菜单「" + sub.name + "」");
      await send({ type: "click", key: sub.key });
    } else if (sub.type === "view") {
      say.note("打开网页「" + sub.name + "」：" + sub.url);
      await send({ type: "view", url: sub.url });
    } else {
      say.note("模拟器暂不支持这种菜单：" + sub.type);
    }
  }

  // -- start -------------------------------------------------------------------------------------

  async function start() {
    try {
      state.config = await api("/config");
    } catch (e) {
      say.error(e.message);
      return;
    }
    setupSettings();
    setupComposer();
    setupMenu();
    const saved = store.get("openid", "");
    useOpenid(/^[A-Za-z0-9_-]{1,64}$/.test(saved) ? saved : randomOpenid());
    if (!state.config.fake_api) {
      say.note("没有模拟的微信接口，客服消息不会显示");
    }
    document.body.dataset.ready = "1";
  }

  document.addEventListener("DOMContentLoaded", start);
})();
