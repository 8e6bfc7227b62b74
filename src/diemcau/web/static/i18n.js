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
