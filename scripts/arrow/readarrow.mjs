#!/usr/bin/env node
// Reads an Arrow IPC *file* (e.g. the embedding that `embed` writes) with
// apache-arrow for JavaScript, an Arrow implementation independent of the Go
// one that wrote it, and prints a JSON summary on stdout:
//
//   format        "file" when the IPC file format (magic + footer) was found
//   rows, batches row and record-batch counts
//   columns       [{name, type, nullable}] as apache-arrow names the types
//   metadata      the schema's key/value metadata
//   classes       the dictionary of the "class" column, if any
//   indexIsRange  whether "index" is exactly 0, 1, ..., rows-1
//   classMatchesLabel  whether class[i] == classes[label[i]] for every row
//   first, last   the first and last rows as JSON objects
//   all           every row, only with --all
//
// Usage: node readarrow.mjs FILE.arrow [--all]
// Exit status 1 with a message on stderr when the file cannot be read.
import { readFileSync } from "node:fs";
import { RecordBatchReader, Table } from "apache-arrow";

function usage() {
  process.stderr.write("usage: node readarrow.mjs FILE.arrow [--all]\n");
  process.exit(2);
}

const args = process.argv.slice(2);
const all = args.includes("--all");
const files = args.filter((a) => a !== "--all");
if (files.length !== 1) usage();

// JSON has no BigInt, no typed arrays and no NaN; map them to what a reader
// of the summary can compare: int64 as a Number when exact, else a string;
// vectors (fixed-size lists) as arrays; NaN/±Inf as strings.
function plain(v) {
  if (typeof v === "bigint") {
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v.toString();
  }
  if (typeof v === "number" && !Number.isFinite(v)) return String(v);
  if (v === null || v === undefined) return null;
  if (ArrayBuffer.isView(v)) return Array.from(v, plain);
  if (typeof v === "object" && typeof v.toArray === "function") return Array.from(v.toArray(), plain);
  return v;
}

function row(table, i) {
  const out = {};
  for (const f of table.schema.fields) out[f.name] = plain(table.getChild(f.name).get(i));
  return out;
}

try {
  const buf = readFileSync(files[0]);
  const reader = RecordBatchReader.from(buf);
  reader.open();
  const format = reader.isFile() ? "file" : reader.isStream() ? "stream" : "unknown";
  const batches = reader.readAll();
  const table = new Table(reader.schema, batches);
  const n = table.numRows;

  const metadata = {};
  for (const [k, v] of table.schema.metadata) metadata[k] = v;

  const summary = {
    format,
    rows: n,
    batches: batches.length,
    columns: table.schema.fields.map((f) => ({ name: f.name, type: String(f.type), nullable: f.nullable })),
    metadata,
  };

  const index = table.getChild("index");
  if (index) {
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = index.get(i) === BigInt(i);
    summary.indexIsRange = ok;
  }

  const cls = table.getChild("class");
  const label = table.getChild("label");
  if (cls && cls.data.length > 0 && cls.data[0].dictionary) {
    const d = cls.data[0].dictionary;
    summary.classes = Array.from({ length: d.length }, (_, i) => d.get(i));
    if (label) {
      let ok = true;
      for (let i = 0; i < n && ok; i++) {
        const l = label.get(i);
        const want = l >= 0 ? summary.classes[l] : null;
        ok = cls.get(i) === want;
      }
      summary.classMatchesLabel = ok;
    }
  }

  if (n > 0) {
    summary.first = row(table, 0);
    summary.last = row(table, n - 1);
  }
  if (all) summary.all = Array.from({ length: n }, (_, i) => row(table, i));
  process.stdout.write(JSON.stringify(summary) + "\n");
} catch (err) {
  process.stderr.write(`readarrow: ${files[0]}: ${err && err.message ? err.message : err}\n`);
  process.exit(1);
}
