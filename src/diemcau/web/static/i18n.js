// Vietnamese first, English available. Pages mark text with data-i18n="key"
// (and data-i18n-placeholder / data-i18n-title); scripts call t("key", {var}).
"use strict";
const I18N = {
  vi: {
    // directory page
    title: "Danh bạ điểm cầu", login: "Đăng nhập cán bộ", username: "Tên đăng nhập",
    password: "Mật khẩu", signin: "Đăng nhập", logout: "Đăng xuất", search: "Tìm",
    searchph: "Tìm đơn vị hoặc điểm cầu (có hoặc không dấu)", unit: "Đơn vị", type: "Loại",
    sites: "Điểm cầu", children: "Đơn vị trực thuộc", country: "Cả nước", province: "Tỉnh/thành",
    district: "Quận/huyện", commune: "Xã/phường", noresult: "Không tìm thấy kết quả",
    lang: "English",
    // shared
    nav_dash: "Bảng điều hành", nav_chair: "Điều hành họp", nav_dir: "Danh bạ",
    staffonly: "Trang này dành cho tài khoản cán bộ", close: "Đóng",
    role_admin: "quản trị", role_chair: "chủ trì", role_operator: "kỹ thuật", role_province_officer: "cán bộ tỉnh",
    st_online: "Trực tuyến", st_degraded: "Kết nối kém", st_offline: "Mất kết nối", st_unknown: "Chưa rõ",
    since: "từ", spotcheck: "Kiểm tra trực tuyến",
    live_connecting: "Đang kết nối…", live_live: "● Trực tiếp", live_polling: "● Cập nhật mỗi giây",
    live_reconnecting: "Đang kết nối lại…", live_nopresence: "Chưa có dữ liệu trạng thái", live_signedout: "Hết phiên đăng nhập",
    // dashboard
    dash_title: "Bảng điều hành", kpis: "Chỉ số toàn quốc", tree: "Theo tỉnh/thành", online_of: "trực tuyến / tổng",
    alerts: "Cảnh báo", noalerts: "Không có cảnh báo", alerts_na: "Chưa có dữ liệu cảnh báo",
    map: "Bản đồ điểm cầu", findsite: "Tìm điểm cầu (có hoặc không dấu)", colorby: "Tô màu theo",
    by_state: "Trạng thái kết nối", resetview: "Toàn quốc",
    maphelp: "Kéo để di chuyển, cuộn hoặc +/− để phóng to, phím mũi tên để di chuyển, Enter để chọn điểm gần tâm.",
    k_sites: "Điểm cầu", k_online: "Trực tuyến", k_degraded: "Kết nối kém", k_offline: "Mất kết nối",
    k_rate: "Tỷ lệ kết nối", k_inmeeting: "Đang dự họp",
    scope_prov: "(tỉnh của tôi)", scope_nation: "(toàn quốc)",
    noreport: "Chưa báo cáo", show: "Xem", ack_alert: "Đã biết", sev_critical: "Nghiêm trọng", sev_high: "Cao",
    sev_warning: "Cảnh báo", sev_info: "Thông tin", sev_medium: "Trung bình", sev_low: "Thấp",
    // site terminal
    site_title: "Điểm cầu", reconnecting: "Mất kết nối — đang tự động kết nối lại…",
    onair: "ĐANG PHÁT BIỂU — cả hội nghị đang nghe và thấy điểm cầu này",
    muted_imposed: "Chủ trì đã tắt tiếng tất cả điểm cầu", join_h: "Vào điểm cầu",
    join_help: "Mở đường dẫn trên phiếu cấp cho điểm cầu, hoặc nhập mã (dạng MÃ:BÍ-MẬT).",
    join_code: "Mã tham gia", join_btn: "Vào", badcode: "Mã không đúng, đã bị thu hồi hoặc đã được cấp lại",
    setup_h: "Kiểm tra thiết bị trước khi họp", devices: "Thiết bị", camera: "Camera", cam: "Camera",
    mic: "Micrô", loudspeaker: "Loa", spk: "Loa", preview: "Hình của điểm cầu", selftest: "Tự kiểm tra",
    miclevel: "Mức âm micrô (hãy nói thử)", testtone: "Phát âm thanh thử loa", netcheck: "Kiểm tra đường truyền",
    meeting: "Cuộc họp", nomeeting: "Chưa có cuộc họp đang diễn ra. Trang sẽ tự báo khi cuộc họp bắt đầu.",
    meeting_live: "Đang diễn ra: {title}", meeting_over: "Cuộc họp đã kết thúc.", enter: "Vào phòng họp",
    program: "Chương trình hội nghị", raise: "Xin phát biểu", lower: "Hạ tay", mute: "Tắt micrô", unmute: "Bật micrô",
    inbox: "Kết luận và chỉ đạo", leave: "Rời cuộc họp",
    conn_connecting: "Đang kết nối…", conn_online: "● Đã kết nối", conn_reconnecting: "Đang kết nối lại…", conn_closed: "Đã ngắt",
    revoked: "Mã điểm cầu đã bị thu hồi", replaced: "Điểm cầu này vừa được mở ở một máy khác",
    youonair: "Điểm cầu đang được phát biểu", queuepos: "Đã xin phát biểu — thứ tự {n} trong hàng chờ",
    new_conclusion: "Có kết luận mới", new_directive: "Có chỉ đạo mới", conclusion: "Kết luận", directive: "Chỉ đạo",
    acked: "Đã xác nhận", ack: "Xác nhận đã đọc", complete: "Báo cáo hoàn thành", completed: "Đã hoàn thành",
    complete_note: "Ghi chú kết quả thực hiện:", deadline: "Hạn", urgent: "Khẩn", reminder: "Nhắc: có chỉ đạo chưa hoàn thành",
    noreply: "Máy chủ không trả lời",
    report_h: "Báo cáo tình hình", report_form: "Mẫu báo cáo", report_send: "Gửi báo cáo",
    report_period: "Kỳ báo cáo: {p}", report_filed: "— đã gửi (lần {n}, {at})", report_missing: "— chưa gửi kỳ này",
    report_sent: "Đã gửi báo cáo (lần {n})", yes: "Có", no: "Không", noinbox: "Chưa có kết luận hoặc chỉ đạo",
    nodevice: "(không có thiết bị)", nocamera: "Không mở được camera/micrô:",
    tone_playing: "Đang phát… bạn có nghe thấy không?", tone_done: "Đã phát xong",
    checking: "Đang kiểm tra…", chk_grant: "Được phân máy chủ truyền hình {node}",
    chk_reach: "Kết nối tới máy chủ truyền hình ({ms} ms)", chk_rtt: "Độ trễ khứ hồi {ms} ms",
    chk_media: "Truyền hình ảnh và âm thanh thông suốt ({ms} ms)", chk_media_fail: "Không truyền được hình ảnh và âm thanh",
    chk_turn: "Đi qua máy chủ chuyển tiếp TURN ({proto})",
    chk_fail: "Không kết nối được:", verdict_good: "Đường truyền TỐT — sẵn sàng họp",
    verdict_fair: "Đường truyền TẠM ĐƯỢC — hình có thể chậm", verdict_bad: "Đường truyền KHÔNG ĐẠT — hãy báo cán bộ kỹ thuật",
    chair: "Chủ trì", waiting_program: "Đang chờ tín hiệu từ điểm cầu Trung ương…",
    // chair console
    chair_title: "Điều hành họp", new_meeting: "+ Cuộc họp mới", nomeeting_chair: "chưa có cuộc họp",
    m_title: "Tên cuộc họp", m_invite: "Mời", everyone: "Tất cả điểm cầu", start_meeting: "Bắt đầu họp",
    end_meeting: "Kết thúc họp", confirm_end: "Kết thúc cuộc họp cho tất cả điểm cầu?",
    next: "Mời người tiếp theo", revoke: "Thu hồi quyền phát biểu", muteall: "Tắt tiếng tất cả", allowunmute: "Cho phép bật tiếng",
    nospeaker: "Chưa có điểm cầu phát biểu", queue: "Xin phát biểu", attendance: "Điểm danh",
    present: "Có mặt", invited: "Được mời", left: "Đã rời", not_joined: "Chưa vào",
    find: "Tìm và kiểm tra điểm cầu", wall: "Tường hình", grid: "Lưới", state: "Trạng thái",
    st_live: "Đang kết nối", all: "Tất cả", prev: "Trang trước", nextpage: "Trang sau",
    rotate: "Tự chuyển trang (15 giây)", wall_on: "Bật tường hình", wall_off: "Tắt tường hình",
    grant: "Mời phát biểu", grant_short: "Mời", speaking: "Đang phát biểu", muted_all: "đã tắt tiếng tất cả",
    muted_all_unmute: "đã tắt tiếng, cho phép tự bật", dialogue: "Thêm vào đối thoại (hai điểm cầu)",
    look: "Xem", noqueue: "Chưa có điểm cầu xin phát biểu", media_na: "Chưa có tín hiệu hình",
    speaker: "Phát biểu", connecting_video: "Đang kết nối hình…", live_video: "Trực tiếp — hình sau {ms} ms",
    conclusions: "Kết luận", conclusion_text: "Nội dung kết luận", publish: "Công bố kết luận", published: "Đã công bố kết luận",
    wall_hint: "Bật tường hình để xem lần lượt hình của các điểm cầu đang kết nối.",
    novideo: "Không có hình", page: "Trang {p}/{n} · {total} điểm cầu",
  },
  en: {
    title: "Site directory", login: "Staff login", username: "Username", password: "Password",
    signin: "Sign in", logout: "Sign out", search: "Search",
    searchph: "Find a unit or site (with or without diacritics)", unit: "Unit", type: "Type",
    sites: "Sites", children: "Sub-units", country: "Country", province: "Provinces",
    district: "Districts", commune: "Communes", noresult: "No results", lang: "Tiếng Việt",
    nav_dash: "Dashboard", nav_chair: "Chair console", nav_dir: "Directory",
    staffonly: "This page is for staff accounts", close: "Close",
    role_admin: "admin", role_chair: "chair", role_operator: "operator", role_province_officer: "province officer",
    st_online: "Online", st_degraded: "Degraded", st_offline: "Offline", st_unknown: "Unknown",
    since: "since", spotcheck: "Spot-check",
    live_connecting: "Connecting…", live_live: "● Live", live_polling: "● Updating every second",
    live_reconnecting: "Reconnecting…", live_nopresence: "No presence data yet", live_signedout: "Session expired",
    dash_title: "Command dashboard", kpis: "National indicators", tree: "By province", online_of: "online / total",
    alerts: "Alerts", noalerts: "No alerts", alerts_na: "No alert data yet",
    map: "Map of sites", findsite: "Find a site (with or without diacritics)", colorby: "Colour by",
    by_state: "Connection state", resetview: "Whole country",
    maphelp: "Drag to pan, wheel or +/− to zoom, arrow keys to pan, Enter selects the point nearest the centre.",
    k_sites: "Sites", k_online: "Online", k_degraded: "Degraded", k_offline: "Offline",
    k_rate: "Connected", k_inmeeting: "In meeting",
    scope_prov: "(my province)", scope_nation: "(whole country)",
    noreport: "No report", show: "Show", ack_alert: "Acknowledge", sev_critical: "Critical", sev_high: "High",
    sev_warning: "Warning", sev_info: "Info", sev_medium: "Medium", sev_low: "Low",
    site_title: "Site", reconnecting: "Connection lost — reconnecting automatically…",
    onair: "ON AIR — the whole meeting hears and sees this site",
    muted_imposed: "The chair has muted every site", join_h: "Join as a site",
    join_help: "Open the link printed on the site's sheet, or type its code (CODE:SECRET).",
    join_code: "Join code", join_btn: "Join", badcode: "Unknown, revoked or replaced code",
    setup_h: "Check your devices before the meeting", devices: "Devices", camera: "Camera", cam: "Camera",
    mic: "Microphone", loudspeaker: "Speaker", spk: "Speaker", preview: "This site's picture", selftest: "Self-test",
    miclevel: "Microphone level (say something)", testtone: "Play a speaker test tone", netcheck: "Check the network",
    meeting: "Meeting", nomeeting: "No meeting is live. This page tells you when one starts.",
    meeting_live: "Live now: {title}", meeting_over: "The meeting has ended.", enter: "Enter the meeting",
    program: "Meeting program", raise: "Ask to speak", lower: "Lower hand", mute: "Mute microphone", unmute: "Unmute microphone",
    inbox: "Conclusions and directives", leave: "Leave the meeting",
    conn_connecting: "Connecting…", conn_online: "● Connected", conn_reconnecting: "Reconnecting…", conn_closed: "Disconnected",
    revoked: "This site's code was revoked", replaced: "This site was just opened on another computer",
    youonair: "This site has the floor", queuepos: "Hand raised — number {n} in the queue",
    new_conclusion: "New conclusion", new_directive: "New directive", conclusion: "Conclusion", directive: "Directive",
    acked: "Acknowledged", ack: "Acknowledge", complete: "Report completion", completed: "Completed",
    complete_note: "Note on what was done:", deadline: "Deadline", urgent: "Urgent", reminder: "Reminder: a directive is not completed",
    noreply: "The server did not answer",
    report_h: "Situation report", report_form: "Report form", report_send: "Send the report",
    report_period: "Period: {p}", report_filed: "— sent (revision {n}, {at})", report_missing: "— not sent for this period",
    report_sent: "Report sent (revision {n})", yes: "Yes", no: "No", noinbox: "No conclusions or directives yet",
    nodevice: "(no device)", nocamera: "Cannot open the camera/microphone:",
    tone_playing: "Playing… can you hear it?", tone_done: "Done",
    checking: "Checking…", chk_grant: "Assigned media server {node}",
    chk_reach: "Reached the media server ({ms} ms)", chk_rtt: "Round trip {ms} ms",
    chk_media: "Picture and sound flow ({ms} ms)", chk_media_fail: "Picture and sound cannot get through",
    chk_turn: "Through the TURN relay ({proto})",
    chk_fail: "Cannot connect:", verdict_good: "Network GOOD — ready for the meeting",
    verdict_fair: "Network FAIR — the picture may lag", verdict_bad: "Network NOT OK — call the IT officer",
    chair: "Chair", waiting_program: "Waiting for the central site's signal…",
    chair_title: "Chair console", new_meeting: "+ New meeting", nomeeting_chair: "no meeting",
    m_title: "Meeting title", m_invite: "Invite", everyone: "Every site", start_meeting: "Start the meeting",
    end_meeting: "End meeting", confirm_end: "End the meeting for every site?",
    next: "Next in queue", revoke: "Take the floor back", muteall: "Mute all", allowunmute: "Allow unmuting",
    nospeaker: "No site has the floor", queue: "Raised hands", attendance: "Attendance",
    present: "Present", invited: "Invited", left: "Left", not_joined: "Not joined",
    find: "Find and spot-check a site", wall: "Video wall", grid: "Grid", state: "State",
    st_live: "Connected", all: "All", prev: "Previous page", nextpage: "Next page",
    rotate: "Rotate pages (15 s)", wall_on: "Show the wall", wall_off: "Hide the wall",
    grant: "Give the floor", grant_short: "Floor", speaking: "Speaking", muted_all: "everyone muted",
    muted_all_unmute: "muted, unmuting allowed", dialogue: "Add to a dialogue (two sites)",
    look: "Look", noqueue: "No raised hands", media_na: "No picture yet",
    speaker: "Speaking", connecting_video: "Connecting video…", live_video: "Live — picture after {ms} ms",
    conclusions: "Conclusions", conclusion_text: "Conclusion text", publish: "Publish the conclusion", published: "Conclusion published",
    wall_hint: "Show the wall to walk through the pictures of the connected sites.",
    novideo: "No picture", page: "Page {p}/{n} · {total} sites",
  },
};
let LANG = localStorage.getItem("diemcau.lang") || "vi";
function t(key, vars) {
  let s = (I18N[LANG] && I18N[LANG][key]) || I18N.vi[key] || key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.split("{" + k + "}").join(String(v));
  return s;
}
function applyI18n(root) {
  const r = root || document;
  r.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  r.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  r.querySelectorAll("[data-i18n-title]").forEach((el) => { el.title = t(el.dataset.i18nTitle); });
  r.querySelectorAll("[data-i18n-label]").forEach((el) => { el.setAttribute("aria-label", t(el.dataset.i18nLabel)); });
  document.documentElement.lang = LANG;
  const btn = document.getElementById("lang");
  if (btn) btn.textContent = t("lang");
}
function toggleLang() {
  LANG = LANG === "vi" ? "en" : "vi";
  localStorage.setItem("diemcau.lang", LANG);
  applyI18n();
  document.dispatchEvent(new Event("langchange"));
}
if (document.readyState !== "loading") applyI18n();
else document.addEventListener("DOMContentLoaded", () => applyI18n());
