// LARB leaderboard site: sortable tables, board filters, the query browser's search and order.
// Plain browser JavaScript, no library and no network: the pages work from file:// as well.
"use strict";

function cellValue(row, column) {
  const cell = row.cells[column];
  const value = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
  const number = parseFloat(value);
  return Number.isNaN(number) ? value.toLowerCase() : number;
}

function sortTable(table, column, header) {
  const body = table.tBodies[0];
  const ascending = header.getAttribute("aria-sort") !== "ascending";
  for (const other of table.tHead.rows[0].cells) other.removeAttribute("aria-sort");
  header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellValue(a, column), y = cellValue(b, column);
    const order = x < y ? -1 : x > y ? 1 : 0;
    return ascending ? order : -order;
  });
  for (const row of rows) body.appendChild(row);
}

function makeSortable(table) {
  Array.from(table.tHead.rows[0].cells).forEach((header, column) => {
    if (!header.classList.contains("sortable")) return;
    header.addEventListener("click", () => sortTable(table, column, header));
  });
}

function applyBoardFilters() {
  const training = document.getElementById("filter-training").value;
  const dataset = document.getElementById("filter-dataset").value;
  const hideContaminated = document.getElementById("filter-contaminated").checked;
  const show = document.getElementById("filter-show").value;
  for (const row of document.querySelectorAll("tr[data-submission]")) {
    const datasets = row.dataset.training ? row.dataset.training.split(" ") : [];
    let visible = true;
    if (training === "zero-shot") visible = datasets.length === 0;
    if (training === "trained") visible = datasets.length > 0;
    if (dataset !== "any" && !datasets.includes(dataset)) visible = false;
    if (hideContaminated && row.dataset.contaminated === "yes") visible = false;
    row.hidden = !visible;
  }
  for (const block of document.querySelectorAll("[data-block]")) {
    block.hidden = show !== "both" && block.dataset.block !== show;
  }
}

function setUpQueryBrowser() {
  const table = document.getElementById("queries");
  const search = document.getElementById("query-search");
  const count = document.getElementById("query-count");
  // the query cell holds the caption and the query id: what the search box looks in
  const texts = new Map(Array.from(table.tBodies[0].rows, row => [row, row.cells[1].textContent.toLowerCase()]));
  const update = () => {
    const needle = search.value.trim().toLowerCase();
    let shown = 0;
    for (const row of table.tBodies[0].rows) {
      row.hidden = needle !== "" && !texts.get(row).includes(needle);
      if (!row.hidden) shown += 1;
    }
    count.textContent = String(shown);
  };
  search.addEventListener("input", update);
  const order = (key, ascending) => {
    const rows = Array.from(table.tBodies[0].rows);
    rows.sort((a, b) => (parseFloat(a.dataset[key]) - parseFloat(b.dataset[key])) * (ascending ? 1 : -1)
                        || parseFloat(a.dataset.position) - parseFloat(b.dataset.position));
    for (const row of rows) table.tBodies[0].appendChild(row);
  };
  document.getElementById("sort-worst").addEventListener("click", () => order("score", true));
  document.getElementById("sort-task").addEventListener("click", () => order("position", true));
  update();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const table of document.querySelectorAll("table.sortable-table")) makeSortable(table);
  if (document.getElementById("filter-training")) {
    for (const id of ["filter-training", "filter-dataset", "filter-contaminated", "filter-show"]) {
      document.getElementById(id).addEventListener("change", applyBoardFilters);
    }
    applyBoardFilters();
  }
  if (document.getElementById("queries")) setUpQueryBrowser();
});
