// Independent writers for pack's ingest tests: they turn an image folder
// (root/<class>/<image>) into files that pack must read back.
//
//   node write.mjs parquet-hf    ROOT OUT.parquet  # DuckDB: Hugging Face layout
//   node write.mjs parquet-plain ROOT OUT.parquet  # DuckDB: BLOB column "img", class-name column "cls"
//   node write.mjs arrow         ROOT OUT.arrow    # apache-arrow: Arrow IPC file, binary "image", int "label"
//
// The Hugging Face layout is that of `datasets`' Parquet exports: an
// "image" struct {bytes: BLOB, path: VARCHAR} and an integer "label" whose
// ClassLabel names are in the file's key-value metadata under
// "huggingface". Rows are in class order, then file-name order, like pack's
// own folder order; classes are numbered in sorted order. Small row groups
// (ROW_GROUP_SIZE 16) make the reader cross row-group boundaries.
import { DuckDBInstance } from '@duckdb/node-api';
import { readdirSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Binary, Field, Int32, Schema, Table, makeData, makeVector, tableToIPC, vectorFromArray, RecordBatch, Struct } from 'apache-arrow';

const [mode, root, out] = process.argv.slice(2);
if (!mode || !root || !out) {
  console.error('usage: node write.mjs parquet-hf|parquet-plain|arrow ROOT OUT');
  process.exit(2);
}
const classes = readdirSync(root).filter((c) => statSync(join(root, c)).isDirectory()).sort();
const rows = [];
classes.forEach((c, label) => {
  for (const f of readdirSync(join(root, c)).sort()) rows.push({ path: join(root, c, f), name: `${c}/${f}`, label, cls: c });
});
const sq = (s) => "'" + s.replaceAll("'", "''") + "'";

if (mode === 'parquet-hf' || mode === 'parquet-plain') {
  const db = await DuckDBInstance.create(':memory:');
  const con = await db.connect();
  // read_blob reads the files itself; the row order is fixed by a join on
  // the list above.
  const list = rows.map((r, i) => `(${i}, ${sq(r.path)}, ${sq(r.name)}, ${r.label}, ${sq(r.cls)})`).join(',\n');
  await con.run(`CREATE TABLE files AS SELECT * FROM (VALUES ${list}) t(i, path, name, label, cls)`);
  await con.run(`CREATE TABLE blobs AS SELECT filename, content FROM read_blob([${rows.map((r) => sq(r.path)).join(',')}])`);
  if (mode === 'parquet-hf') {
    const hf = JSON.stringify({ info: { features: { image: { _type: 'Image' }, label: { names: classes, _type: 'ClassLabel' } } } });
    await con.run(`COPY (SELECT {'bytes': b.content, 'path': f.name} AS image, f.label::BIGINT AS label
                   FROM files f JOIN blobs b ON b.filename = f.path ORDER BY f.i)
                   TO ${sq(out)} (FORMAT parquet, ROW_GROUP_SIZE 16, KV_METADATA {huggingface: ${sq(hf)}})`);
  } else {
    await con.run(`COPY (SELECT f.i::INTEGER AS id, b.content AS img, f.cls AS cls
                   FROM files f JOIN blobs b ON b.filename = f.path ORDER BY f.i)
                   TO ${sq(out)} (FORMAT parquet, ROW_GROUP_SIZE 16)`);
  }
  console.log(`wrote ${rows.length} rows, ${classes.length} classes to ${out} with DuckDB`);
} else if (mode === 'arrow') {
  const hf = JSON.stringify({ info: { features: { image: { _type: 'Image' }, label: { names: classes, _type: 'ClassLabel' } } } });
  // Two record batches, so that the reader crosses a batch boundary.
  const half = Math.ceil(rows.length / 2);
  const batches = [rows.slice(0, half), rows.slice(half)].filter((b) => b.length > 0).map((part) => {
    const image = vectorFromArray(part.map((r) => new Uint8Array(readFileSync(r.path))), new Binary());
    const label = vectorFromArray(part.map((r) => r.label), new Int32());
    return new Table({ image, label }).batches[0];
  });
  const schema = new Schema(batches[0].schema.fields, new Map([['huggingface', hf]]));
  const table = new Table(schema, batches.map((b) => new RecordBatch(schema, b.data)));
  writeFileSync(out, tableToIPC(table, 'file'));
  console.log(`wrote ${rows.length} rows, ${classes.length} classes to ${out} with apache-arrow`);
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
