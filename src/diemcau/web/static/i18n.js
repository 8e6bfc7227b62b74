// Vietnamese first, English available. Pages mark text with data-i18n="key".
"use strict";
const I18N = {
  vi: {
    title: "Danh bạ điểm cầu", login: "Đăng nhập cán bộ", username: "Tên đăng nhập",
    password: "Mật khẩu", signin: "Đăng nhập", logout: "Đăng xuất", search: "Tìm",
    searchph: "Tìm đơn vị hoặc điểm cầu (có hoặc không dấu)", unit: "Đơn vị", type: "Loại",
    sites: "Điểm cầu", children: "Đơn vị trực thuộc", country: "Cả nước", province: "Tỉnh/thành",
    district: "Quận/huyện", commune: "Xã/phường", noresult: "Không tìm thấy kết quả",
    lang: "English",
  },
  en: {
    title: "Site directory", login: "Staff login", username: "Username", password: "Password",
    signin: "Sign in", logout: "Sign out", search: "Search",
    searchph: "Find a unit or site (with or without diacritics)", unit: "Unit", type: "Type",
    sites: "Sites", children: "Sub-units", country: "Country", province: "Provinces",
    district: "Districts", commune: "Communes", noresult: "No results", lang: "Tiếng Việt",
  },
};
let LANG = localStorage.getItem("diemcau.lang") || "vi";
function t(key) { return (I18N[LANG] && I18N[LANG][key]) || I18N.vi[key] || key; }
function applyI18n(root) {
  (root || document).querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  (root || document).querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
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
