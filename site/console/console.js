// The auditors' SQL console: DuckDB-WASM (vendored beside this file at build time) over the published
// audit.duckdb, attached read-only. Loaded only by the console page. Every cell is put in the page as
// text (textContent), never as HTML: contributed text must stay inert.
//
// A shared link runs its query on open, so a query is untrusted input: it may read the published database,
// nothing else. DuckDB enforces that itself (external access off once the database is attached, extensions
// never fetched, settings locked), and statements that are not queries (ATTACH, DETACH, INSTALL, LOAD, SET,
// COPY...) are refused before they run, found by DuckDB's own tokenizer. (The engine has no Parquet reader
// built in: it is an extension DuckDB would fetch from the network, so the Parquet files are downloads only.)
//
// Layout, relative to this file (audit/engine/console.js):
//   ../audit.duckdb                the public database
//   queries.json                   canned queries generated from the catalog's audit views
//   engine.json                    {"vendored": bool, "reason": ...} written by `taxreg site`
//   duckdb/duckdb-browser.bundle.mjs, duckdb/duckdb-eh.wasm, duckdb/duckdb-browser-eh.worker.js

const HERE = new URL(".", import.meta.url);
const DATABASE_URL = new URL("../audit.duckdb", HERE);
const MAX_ROWS = 1000;
// Statements that only read, by their first keyword (after any "(" and EXPLAIN [ANALYZE]).
const QUERIES = ["select", "with", "from", "values", "table", "describe", "show", "summarize", "pivot", "unpivot"];
const KEYWORD = 4, OPERATOR = 3; // DuckDB's token types (ScriptTokens.types)
const SEMICOLON = 0x3b, PARENTHESIS = 0x28;
const SCOPE = "This console reads the published audit database, attached read-only as \"audit\", and nothing " +
  "else";

let engine = null; // one engine per document: instant navigation may mount the console again

function el(tag, attrs = {}, text = null) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== null) node.textContent = text;
  return node;
}

async function fetchJson(url) {
  const response = await fetch(url, { cache: "no-cache" });
  if (!response.ok) throw new Error(`${url.pathname}: HTTP ${response.status}`);
  return response.json();
}

async function startEngine(setStatus) {
  const status = await fetchJson(new URL("engine.json", HERE)).catch(() => ({ vendored: false }));
  if (!status.vendored) {
    const error = new Error("The SQL engine (DuckDB-WASM) was not vendored when this site was built" +
      (status.reason ? `: ${status.reason}` : "") + ". Download audit.duckdb and query it with DuckDB instead.");
    error.notVendored = true;
    throw error;
  }
  setStatus(`Loading DuckDB-WASM ${status.version || ""} (about 8 MB compressed)…`);
  const duckdb = await import(new URL("duckdb/duckdb-browser.bundle.mjs", HERE).href);
  const worker = new Worker(new URL("duckdb/duckdb-browser-eh.worker.js", HERE).href);
  const db = new duckdb.AsyncDuckDB(new duckdb.VoidLogger(), worker);
  await db.instantiate(new URL("duckdb/duckdb-eh.wasm", HERE).href);
  setStatus("Downloading the audit database…");
  const response = await fetch(DATABASE_URL);
  if (!response.ok) throw new Error(`cannot download ${DATABASE_URL.pathname}: HTTP ${response.status}`);
  await db.registerFileBuffer("audit.duckdb", new Uint8Array(await response.arrayBuffer()));
  const conn = await db.connect();
  await lockDown(conn);
  return { db, conn, version: status.version || "" };
}

// DuckDB's own guards, in an order that leaves them locked: no extension fetched, the database attached,
// then no file or address reachable (enable_external_access cannot be turned back on) and the configuration
// locked, so that no query can undo any of it.
async function lockDown(conn) {
  for (const sql of [
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "ATTACH 'audit.duckdb' AS audit (READ_ONLY)",
    "USE audit",
    "SET enable_external_access = false",
    "SET lock_configuration = true",
  ]) await conn.query(sql);
}

// Why a query is refused before it runs, or null: each statement must begin (after "(" and EXPLAIN
// [ANALYZE]) with a query keyword. Statements are split at ";" tokens, so ";" in strings, quoted names and
// comments does not count. A statement that begins with no keyword at all is left to DuckDB's parser,
// which refuses it as a syntax error. Token offsets are byte offsets into the UTF-8 text.
async function refusal(db, sql) {
  let tokens;
  try {
    tokens = await db.tokenize(sql);
  } catch (exc) {
    return `Refused: the query could not be read (${exc && exc.message ? exc.message : exc}).`;
  }
  const bytes = new TextEncoder().encode(sql);
  const { offsets, types } = tokens;
  let start = true, explained = false;
  for (let i = 0; i < offsets.length; i++) {
    const byte = bytes[offsets[i]];
    if (types[i] === OPERATOR && byte === SEMICOLON) {
      start = true;
      explained = false;
      continue;
    }
    if (!start) continue;
    if (types[i] === OPERATOR && byte === PARENTHESIS) continue;
    if (types[i] !== KEYWORD) {
      start = false;
      continue;
    }
    const word = keyword(bytes, offsets[i]);
    if (word === "explain" || (explained && word === "analyze")) {
      explained = true;
      continue;
    }
    if (!QUERIES.includes(word)) {
      return `Refused: ${word.toUpperCase()} statements do not run here. ${SCOPE}: only queries run ` +
        `(${QUERIES.map((q) => q.toUpperCase()).join(", ")}, EXPLAIN).`;
    }
    start = false;
  }
  return null;
}

function keyword(bytes, at) {
  let word = "";
  for (let i = at; i < bytes.length && /[A-Za-z_]/.test(String.fromCharCode(bytes[i])); i++) {
    word += String.fromCharCode(bytes[i]);
  }
  return word.toLowerCase();
}

// DuckDB's refusals, with what this console allows.
function withScope(message) {
  if (/Permission Error/.test(message)) return `${message}\n\n${SCOPE}: other files and addresses are refused.`;
  if (/but it exists in the \w+ extension/.test(message)) {
    return `${message}\n\nExtensions are not loaded here: they would be fetched from the network. ${SCOPE}.`;
  }
  if (/configuration has been locked/.test(message)) {
    return `${message}\n\nSettings are locked here: they keep this console offline and read-only.`;
  }
  return message;
}

// Arrow type ids (Apache Arrow's Type enum, fixed by the format).
const ARROW_DATE = 8, ARROW_TIMESTAMP = 10;

function cellText(value, typeId) {
  if (value === null || value === undefined) return null;
  if (typeof value === "bigint") return value.toString();
  if ((typeId === ARROW_TIMESTAMP || typeId === ARROW_DATE) && typeof value === "number") {
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? String(value) : date.toISOString().replace(".000Z", "Z");
  }
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  if (typeof value === "object") {
    const plain = typeof value.toJSON === "function" ? value.toJSON() : value;
    return JSON.stringify(plain, (_, v) => (typeof v === "bigint" ? v.toString() : v));
  }
  return String(value);
}

function renderTable(target, table) {
  const fields = table.schema.fields;
  const wrapper = el("div", { class: "taxreg-console__scroll" });
  const grid = el("table", { class: "taxreg-console__table" });
  const head = el("tr");
  for (const field of fields) head.append(el("th", { scope: "col" }, field.name));
  const thead = el("thead");
  thead.append(head);
  grid.append(thead);
  const body = el("tbody");
  const shown = Math.min(table.numRows, MAX_ROWS);
  const columns = fields.map((_, i) => table.getChildAt(i));
  for (let r = 0; r < shown; r++) {
    const row = el("tr");
    columns.forEach((column, i) => {
      const text = cellText(column.get(r), fields[i].type.typeId);
      const td = text === null ? el("td", { class: "taxreg-console__null" }, "NULL") : el("td", {}, text);
      row.append(td);
    });
    body.append(row);
  }
  grid.append(body);
  wrapper.append(grid);
  target.replaceChildren(wrapper);
  return shown;
}

function sqlFromUrl() {
  const hash = new URLSearchParams(location.hash.replace(/^#/, ""));
  return hash.get("sql") ?? new URLSearchParams(location.search).get("sql");
}

function shareUrl(sql) {
  const url = new URL(location.href);
  url.search = "";
  url.hash = new URLSearchParams({ sql }).toString();
  return url.href;
}

function mount(root) {
  if (root.dataset.mounted) return;
  root.dataset.mounted = "1";
  const status = el("p", { class: "taxreg-console__status", role: "status", "aria-live": "polite" },
    "Starting the SQL engine…");
  const canned = el("select", { class: "taxreg-console__canned", "aria-label": "Audit queries" });
  canned.append(el("option", { value: "" }, "Audit queries…"));
  const about = el("p", { class: "taxreg-console__about" });
  const editor = el("textarea", { class: "taxreg-console__sql", rows: "8", spellcheck: "false",
    "aria-label": "SQL query" });
  editor.value = "SELECT table_name, comment FROM duckdb_tables() ORDER BY table_name";
  const run = el("button", { type: "button", class: "md-button md-button--primary taxreg-console__run",
    disabled: "" }, "Run");
  const share = el("button", { type: "button", class: "md-button taxreg-console__share" }, "Copy link");
  const summary = el("p", { class: "taxreg-console__summary", "aria-live": "polite" });
  const error = el("pre", { class: "taxreg-console__error", role: "alert", hidden: "" });
  const results = el("div", { class: "taxreg-console__results" });
  const toolbar = el("div", { class: "taxreg-console__toolbar" });
  toolbar.append(canned, run, share);
  root.replaceChildren(status, toolbar, about, editor, summary, error, results);

  let queries = [];
  fetchJson(new URL("queries.json", HERE)).then((list) => {
    queries = list;
    for (const [i, q] of list.entries()) canned.append(el("option", { value: String(i) }, q.title));
  }).catch(() => {});
  canned.addEventListener("change", () => {
    const q = queries[Number(canned.value)];
    if (!q || canned.value === "") return;
    editor.value = q.sql;
    about.textContent = q.description || "";
    execute();
  });

  async function execute() {
    if (!engine || engine instanceof Promise) return;
    const sql = editor.value;
    error.hidden = true;
    error.textContent = "";
    summary.textContent = "Running…";
    root.dataset.state = "running";
    const started = performance.now();
    const refused = await refusal(engine.db, sql);
    if (refused !== null) {
      results.replaceChildren();
      summary.textContent = "";
      error.textContent = refused;
      error.hidden = false;
      root.dataset.state = "error";
      return;
    }
    try {
      const table = await engine.conn.query(sql);
      const ms = Math.round(performance.now() - started);
      const shown = renderTable(results, table);
      const more = table.numRows > shown ? ` (showing the first ${shown})` : "";
      summary.textContent = `${table.numRows} row${table.numRows === 1 ? "" : "s"}${more} in ${ms} ms`;
      root.dataset.state = "done";
    } catch (exc) {
      results.replaceChildren();
      summary.textContent = "";
      error.textContent = withScope(String(exc && exc.message ? exc.message : exc));
      error.hidden = false;
      root.dataset.state = "error";
    }
  }

  run.addEventListener("click", execute);
  editor.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      execute();
    }
  });
  share.addEventListener("click", async () => {
    const url = shareUrl(editor.value);
    history.replaceState(null, "", url);
    try {
      await navigator.clipboard.writeText(url);
      summary.textContent = "Link copied: it opens this console and runs the query.";
    } catch {
      summary.textContent = "The address bar now holds a link that runs this query.";
    }
  });
  window.addEventListener("hashchange", () => {
    const sql = sqlFromUrl();
    if (sql !== null && sql !== editor.value) {
      editor.value = sql;
      execute();
    }
  });

  const shared = sqlFromUrl();
  if (shared !== null) editor.value = shared;
  if (!engine) engine = startEngine((text) => { status.textContent = text; });
  Promise.resolve(engine).then((ready) => {
    engine = ready;
    status.textContent = `DuckDB-WASM ${ready.version} · audit.duckdb attached read-only · Ctrl+Enter runs`;
    run.removeAttribute("disabled");
    root.dataset.ready = "1";
    return shared !== null ? execute() : null;
  }).catch((exc) => {
    engine = null;
    status.textContent = "";
    error.textContent = String(exc && exc.message ? exc.message : exc);
    error.hidden = false;
    root.dataset.state = exc && exc.notVendored ? "unavailable" : "error";
  });
}

function mountAll() {
  for (const root of document.querySelectorAll("#taxreg-console")) mount(root);
}

// mkdocs-material's instant navigation swaps pages without reloading modules: follow its page stream.
if (window.document$ && typeof window.document$.subscribe === "function") window.document$.subscribe(mountAll);
else mountAll();
