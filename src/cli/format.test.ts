// Output formats: the pretty table (with its title in the top border, multi-line cells, right
// alignment), tsv, json and yaml as patronictl prints them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { prettyTable, render, rowObjects, tsvTable, yamlText } from './format.ts';

const columns = ['Member', 'TL', 'Lag in MB'];
const rows = [['node1', 1, ''], ['node2', 12, 0]];

test('a pretty table: rules, padded cells, numbers aligned right', () => {
  assert.equal(prettyTable(columns, rows, { rightAlign: ['TL', 'Lag in MB'] }), [
    '+--------+----+-----------+',
    '| Member | TL | Lag in MB |',
    '+--------+----+-----------+',
    '| node1  |  1 |           |',
    '| node2  | 12 |         0 |',
    '+--------+----+-----------+',
  ].join('\n'));
});

test('the title is drawn into the top border, which widens when the title is longer', () => {
  const short = prettyTable(columns, rows, { title: '+ Cluster: d (7) ' }).split('\n');
  assert.equal(short[0], '+ Cluster: d (7) ---------+');
  assert.equal(short[0].length, short[1].length);
  const long = prettyTable(['A'], [['x']], { title: '+ Cluster: demo (7345678901234567890) ' }).split('\n');
  assert.equal(long[0], '+ Cluster: demo (7345678901234567890) -+');
  assert.equal(long[1], `| A${' '.repeat(long[0].length - 5)} |`);
  assert.ok(long.every((l) => l.length === long[0].length));
});

test('a map cell (tags) becomes YAML lines, and the row grows to hold them', () => {
  const t = prettyTable(['Member', 'Tags'], [['node1', { nofailover: true, clonefrom: false }]]).split('\n');
  assert.deepEqual(t.slice(3, 5), ['| node1  | clonefrom: false |', '|        | nofailover: true |']);
});

test('tsv: a header row, tab-separated cells, empty cells empty', () => {
  assert.equal(tsvTable(columns, rows), 'Member\tTL\tLag in MB\nnode1\t1\t\nnode2\t12\t0');
});

test('json and yaml: one object per row, empty cells left out', () => {
  assert.deepEqual(rowObjects(columns, rows), [{ Member: 'node1', TL: 1 }, { Member: 'node2', TL: 12, 'Lag in MB': 0 }]);
  assert.deepEqual(JSON.parse(render('json', columns, rows)), rowObjects(columns, rows));
  assert.deepEqual(parse(render('yaml', columns, rows)), rowObjects(columns, rows));
  assert.deepEqual(JSON.parse(render('json', ['a', 'b'], [[1, null]], { keepEmpty: true })), [{ a: 1, b: null }]);
});

test("YAML quotes the strings PyYAML would read as booleans, and reads back the same", () => {
  const text = yamlText({ wal_log_hints: 'on', hot_standby: true, b: 'yes', work_mem: '8MB' });
  assert.equal(text, 'b: "yes"\nhot_standby: true\nwal_log_hints: "on"\nwork_mem: 8MB\n');
  assert.deepEqual(parse(text), { wal_log_hints: 'on', hot_standby: true, b: 'yes', work_mem: '8MB' });
});
