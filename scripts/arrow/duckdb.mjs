// Reads a Parquet embedding with DuckDB (an independent Parquet reader) and
// prints its rows as JSON, in the file's order, for embedio's tests:
//   node duckdb.mjs emb.parquet
import { DuckDBInstance } from '@duckdb/node-api';

const path = process.argv[2];
if (!path) {
  console.error('usage: node duckdb.mjs FILE.parquet');
  process.exit(2);
}
const db = await DuckDBInstance.create(':memory:');
const con = await db.connect();
const lit = "'" + path.replaceAll("'", "''") + "'";
// file_row_number keeps the rows in the order they are stored.
const res = await con.runAndReadAll(
  `SELECT * EXCLUDE (file_row_number) FROM read_parquet(${lit}, file_row_number = true) ORDER BY file_row_number`);
const cols = res.columnNames();
const types = res.columnTypes().map(String);
const out = { rows: res.currentRowCount, columns: cols, types, metadata: {} };
const data = res.getColumnsJS();
cols.forEach((c, i) => {
  out[c] = data[i].map((v) => (typeof v === 'bigint' ? Number(v) : v));
});
const md = await con.runAndReadAll(
  `SELECT decode(key) AS k, decode(value) AS v FROM parquet_kv_metadata(${lit})`);
for (const [k, v] of md.getRowsJS()) out.metadata[k] = v;
process.stdout.write(JSON.stringify(out));
