// The recordings page: a meeting's program recording in a player, its clips, the
// timeline (click a moment to jump there in the recording), the recording policy,
// the minutes draft (edit, preview as PDF or HTML, publish to every site) and the
// recordings' disk usage. Videos play through file-bound watch tickets, because a
// <video> element cannot send the staff token (docs/recording.md).
"use strict";
(() => {
  const { $, el } = DC;
  const PRESENCE = ["attendance.join", "attendance.leave", "conclusion.ack", "hand.raise", "hand.close"];
  const S = { me: null, meeting: null, files: [], program: null, minutes: null, timeline: null };
  window.diemcauRecordings = S;

  const size = (b) => {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = Number(b) || 0, i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return v.toFixed(i ? 1 : 0) + " " + units[i];
  };
  const clock = (iso) => new Date(iso).toLocaleTimeString(LANG === "vi" ? "vi-VN" : "en-GB");
  const mmss = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
  const fileLabel = (f) => (f.kind === "program" ? t("rec_program") : `${t("rec_" + f.kind)} — ${f.site_code} ${f.site_name || ""}`);

  async function play(file, at) {
    const player = $("player");
    if (S.playing !== file.id) {
      const { url } = await DC.api(`/api/recordings/${file.id}/ticket`, { method: "POST" });
      S.playing = file.id;
      player.src = url;
      await new Promise((ok) => player.addEventListener("loadedmetadata", ok, { once: true }));
    }
    if (at !== undefined) player.currentTime = at;
    S.nowPlaying = file;
    drawNowPlaying();
    player.play().catch(() => {});
  }

  function drawNowPlaying() {
    $("now-playing").textContent = S.nowPlaying ? t("rec_playing", { what: fileLabel(S.nowPlaying) }) : "";
  }

  function drawFiles() {
    const media = S.files.filter((f) => ["program", "clip", "inspection"].includes(f.kind));
    $("files").replaceChildren(media.length ? el("ul", { class: "rec-list" }, media.map((f) =>
      el("li", { dataset: { file: String(f.id), kind: f.kind } },
        el("button", { type: "button", class: "small", onclick: () => play(f).catch((e) => DC.toast(Pages.errText(e), "bad")) }, "▶ " + fileLabel(f)),
        " ", el("span", { class: "muted" }, `${mmss(f.duration_s || 0)} · ${size(f.size)} · SHA-256 ${f.sha256.slice(0, 12)}…`)))) :
      el("p", { class: "muted" }, t("rec_nofile")));
  }

  function drawTimeline() {
    const tl = S.timeline;
    if (!tl) return;
    const all = $("show-presence").checked;
    const events = tl.events.filter((e) => all || !PRESENCE.includes(e.kind));
    $("counts").textContent = t("rec_events", { n: Pages.num(events.length) });
    $("timeline").replaceChildren(...events.map((e) => {
      const clip = e.file_id && S.files.find((f) => f.id === e.file_id);
      const jump = S.program && e.offset_s !== null;
      const text = [e.site_code ? `${e.site_code} ${e.site_name || ""}` : "", e.text || "", e.actor ? "· " + Pages.who(e.actor) : ""].filter(Boolean).join(" ");
      return el("li", { dataset: { kind: e.kind } },
        el("time", { datetime: e.at }, clock(e.at)), " ",
        el("b", {}, t("ev_" + e.kind.replace(".", "_"))), " ", el("span", {}, text), " ",
        jump ? el("button", { type: "button", class: "small secondary", title: t("rec_jump"), dataset: { offset: String(e.offset_s) },
          onclick: () => play(S.program, e.offset_s).catch((err) => DC.toast(Pages.errText(err), "bad")) }, "▶ " + mmss(e.offset_s)) : null,
        clip ? el("button", { type: "button", class: "small secondary", onclick: () => play(clip, 0).catch((err) => DC.toast(Pages.errText(err), "bad")) }, "▶ " + t("rec_clip")) : null);
    }));
  }

  function drawMinutes() {
    const m = S.minutes;
    const panel = $("minutes-panel");
    panel.hidden = !m;
    if (!m) return;
    const published = m.state === "published";
    $("min-state").textContent = t(published ? "rec_published" : "rec_draft");
    $("min-state").className = "badge " + (published ? "ok" : "warn");
    $("min-receipts").textContent = m.read_receipts ? t("rec_receipts", { n: m.read_receipts.read, of: m.read_receipts.invited }) : "";
    const form = $("minutes");
    for (const k of ["summary", "conclusion_notes", "closing"]) {
      form.elements[k].value = m.texts[k] || "";
      form.elements[k].readOnly = published || !S.manage;
    }
    form.querySelectorAll("button").forEach((b) => { b.hidden = published || !S.manage; });
    $("publish").disabled = S.meeting.state !== "ended";
  }

  async function storage() {
    if (!["admin", "chair", "operator"].includes(S.me.role)) return;
    $("storage-panel").hidden = false;
    S.usage = await DC.api("/api/recordings/storage");
    drawStorage();
  }

  function drawStorage() {
    const u = S.usage;
    if (!u) return;
    const pct = Math.round(u.used_fraction * 100);
    $("storage").replaceChildren(
      el("div", { class: "bar-mini " + (u.level === "ok" ? "" : "bad"), role: "meter", "aria-valuenow": String(pct), "aria-valuemin": "0", "aria-valuemax": "100" },
        el("i", { style: `width:${pct}%` })),
      el("p", {}, el("span", { class: "badge " + (u.level === "ok" ? "ok" : "bad"), dataset: { level: u.level } }, t("lvl_" + u.level)), " ",
        t("rec_disk", { used: size(u.used_bytes), total: size(u.total_bytes), free: size(u.free_bytes) })),
      el("p", { class: "muted" }, t("rec_recordings", { n: size(u.recordings_bytes) }),
        u.seconds_left !== null ? " — " + t("rec_left", { min: Math.round(u.seconds_left / 60) }) : ""));
  }

  function drawState() {
    if (!S.meeting || !S.policy) return;
    const st = $("m-state");
    st.textContent = t("m_" + S.meeting.state) + " · " + t("st_" + S.policy.state);
    st.className = "badge " + (S.policy.state === "failed" ? "bad" : S.policy.state === "recording" ? "warn" : "ok");
  }

  async function select(id) {
    location.hash = "m=" + id;
    document.querySelectorAll("#meetings li").forEach((li) => li.classList.toggle("on", li.dataset.meeting === String(id)));
    const meeting = await DC.api(`/api/meetings/${id}`);
    S.meeting = meeting;
    $("pick").hidden = true; $("meeting").hidden = false;
    $("m-title").textContent = meeting.title;
    const rec = await DC.api(`/api/meetings/${id}/recording`);
    S.manage = rec.may_manage;
    S.files = rec.files;
    S.program = rec.files.find((f) => f.kind === "program") || null;
    S.policy = rec.policy;
    drawState();
    const pol = $("policy");
    pol.elements.record_program.checked = rec.policy.record_program;
    pol.elements.record_inspections.checked = rec.policy.record_inspections;
    pol.elements.retention_days.value = rec.policy.retention_days || "";
    $("policy-panel").hidden = !S.manage;
    drawFiles();
    S.timeline = await DC.api(`/api/meetings/${id}/timeline?limit=5000`);
    drawTimeline();
    try { S.minutes = await DC.api(`/api/meetings/${id}/minutes`); } catch (_e) { S.minutes = null; }
    drawMinutes();
    if (S.program && !S.playing) {
      const { url } = await DC.api(`/api/recordings/${S.program.id}/ticket`, { method: "POST" });
      S.playing = S.program.id; $("player").src = url;
    }
  }

  async function meetings() {
    S.rows = [...await DC.api("/api/meetings?state=live"), ...await DC.api("/api/meetings?state=ended")];
    drawMeetings();
    return S.rows;
  }

  function drawMeetings() {
    const on = S.meeting ? String(S.meeting.id) : "";
    $("meetings").replaceChildren(...(S.rows || []).map((m) => el("li", { class: String(m.id) === on ? "on" : null, dataset: { meeting: String(m.id) } },
      el("button", { type: "button", class: "link", onclick: () => { S.playing = null; select(m.id).catch((e) => DC.toast(Pages.errText(e), "bad")); } }, m.title),
      el("br"), el("span", { class: "muted" }, `${Pages.dt(m.started_at)} · ${t("m_" + m.state)}`))));
  }

  function wire() {
    $("show-presence").addEventListener("change", drawTimeline);
    document.addEventListener("langchange", () => {
      drawMeetings(); drawStorage(); drawState(); drawNowPlaying(); drawFiles(); drawTimeline(); drawMinutes();
    });
    $("policy").onsubmit = async (ev) => {
      ev.preventDefault();
      const f = $("policy").elements;
      const days = f.retention_days.value ? Number(f.retention_days.value) : null;
      const body = { record_program: f.record_program.checked, record_inspections: f.record_inspections.checked };
      if (days) body.retention_days = days; else body.clear_retention = true;
      try { await DC.api(`/api/meetings/${S.meeting.id}/recording/policy`, { method: "PUT", body }); DC.toast(t("rec_saved")); } catch (e) { DC.toast(Pages.errText(e), "bad"); }
    };
    $("minutes").onsubmit = async (ev) => {
      ev.preventDefault();
      const f = $("minutes").elements;
      const texts = { summary: f.summary.value, conclusion_notes: f.conclusion_notes.value, closing: f.closing.value };
      try {
        await DC.api(`/api/meetings/${S.meeting.id}/minutes`, { method: "PUT", body: { texts, version: S.minutes.version } });
        S.minutes = await DC.api(`/api/meetings/${S.meeting.id}/minutes`);
        drawMinutes(); DC.toast(t("rec_saved"));
      } catch (e) { DC.toast(Pages.errText(e), "bad"); }
    };
    $("publish").onclick = async () => {
      if (!confirm(t("rec_confirm_publish"))) return;
      try {
        await DC.api(`/api/meetings/${S.meeting.id}/minutes/publish`, { method: "POST" });
        S.minutes = await DC.api(`/api/meetings/${S.meeting.id}/minutes`);
        drawMinutes();
      } catch (e) { DC.toast(Pages.errText(e), "bad"); }
    };
    const doc = (fmt) => () => Pages.download(`/api/meetings/${S.meeting.id}/minutes.${fmt}`).catch((e) => DC.toast(e.message, "bad"));
    $("min-pdf").onclick = doc("pdf");
    $("min-html").onclick = doc("html");
  }

  Pages.start("rec_title", async (me) => {
    S.me = me;
    applyI18n(document);
    wire();
    const rows = await meetings();
    await storage().catch(() => {});
    const want = Number((/m=(\d+)/.exec(location.hash) || [])[1]);
    const pick = rows.find((m) => m.id === want) || null;
    if (pick) await select(pick.id);
  });
})();
