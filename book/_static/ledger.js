// Filters for the claims ledger ("What holds"): by paper, by verdict and by kind, and a
// free-text search. Plain DOM, no library, nothing fetched.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("div.ledger-table").forEach(function (box) {
    var table = box.querySelector("table");
    if (!table) return;
    var heads = Array.from(table.querySelectorAll("thead th")).map(function (th) {
      return th.textContent.trim();
    });
    var rows = Array.from(table.querySelectorAll("tbody tr"));
    var bar = document.createElement("div");
    bar.className = "ledger-filters";
    var count = document.createElement("span");
    count.className = "ledger-count";
    var filters = [];
    ["Paper", "Kind", "Verdict"].forEach(function (name) {
      var col = heads.indexOf(name);
      if (col < 0) return;
      var values = Array.from(new Set(rows.map(function (r) {
        return r.cells[col].textContent.trim();
      }))).sort();
      var label = document.createElement("label");
      label.textContent = name + ":";
      var select = document.createElement("select");
      select.setAttribute("aria-label", "Filter the ledger by " + name.toLowerCase());
      select.dataset.column = String(col);
      [""].concat(values).forEach(function (v) {
        var opt = document.createElement("option");
        opt.value = v;
        opt.textContent = v === "" ? "all" : v;
        select.appendChild(opt);
      });
      select.addEventListener("change", apply);
      label.appendChild(select);
      bar.appendChild(label);
      filters.push(select);
    });
    var search = document.createElement("input");
    search.type = "search";
    search.placeholder = "words, metric, model...";
    search.setAttribute("aria-label", "Search the ledger");
    search.addEventListener("input", apply);
    var slabel = document.createElement("label");
    slabel.textContent = "Search:";
    slabel.appendChild(search);
    bar.appendChild(slabel);
    bar.appendChild(count);
    box.insertBefore(bar, box.firstChild);

    function apply() {
      var q = search.value.trim().toLowerCase();
      var shown = 0;
      rows.forEach(function (r) {
        var ok = filters.every(function (s) {
          return s.value === "" || r.cells[Number(s.dataset.column)].textContent.trim() === s.value;
        });
        if (ok && q) ok = r.textContent.toLowerCase().indexOf(q) >= 0;
        r.style.display = ok ? "" : "none";
        if (ok) shown += 1;
      });
      count.textContent = shown + " of " + rows.length + " rows";
    }
    apply();
  });
});
