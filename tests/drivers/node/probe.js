// Runs statements through node's mysql2 driver and prints what the driver made of each answer,
// one JSON line per step: tests/e2e/test_driver_fidelity.py drives it.
//
//   node probe.js '{"connection": {...mysql2 options...}, "steps": [{"sql": "...",
//                   "params": [...], "execute": false}, ...]}'
//
// A step's line: {"rows", "fields": [[name, columnType]], "stateChanges", "error": [errno,
// message] | null}. The connection's "error" events are reported as {"connectionError": code}.
'use strict';

const mysql = require('mysql2');

const spec = JSON.parse(process.argv[2]);
const out = (value) => process.stdout.write(JSON.stringify(value) + '\n');

const connection = mysql.createConnection(spec.connection);
connection.on('error', (err) => out({ connectionError: err.code }));

// A field, or (for a multi-statement packet) one result's fields or none.
const describe = (f) =>
  Array.isArray(f) ? f.map(describe) : f ? [f.name, f.columnType] : null;

const run = (index) => {
  if (index >= spec.steps.length) {
    connection.end();
    return;
  }
  const step = spec.steps[index];
  const method = step.execute ? 'execute' : 'query';
  connection[method](step.sql, step.params || [], (err, rows, fields) => {
    const header = Array.isArray(rows) ? null : rows;
    out({
      rows: Array.isArray(rows) ? rows : null,
      fields: Array.isArray(fields) ? fields.map(describe) : null,
      stateChanges: header && header.stateChanges ? header.stateChanges : null,
      error: err ? [err.errno, err.message] : null,
    });
    run(index + 1);
  });
};

connection.connect((err) => {
  if (err) {
    out({ error: [err.errno, err.message] });
    process.exit(0);
  }
  run(0);
});
