#!/usr/bin/env node
// Lint Cypher with Neo4j's own language support (`lintCypherQuery` of @neo4j-cypher/language-support).
//
//   node lint.mjs FILE.cypher …        lint files; every $param in a file is declared (as null)
//   node lint.mjs < request.json       lint statements: {"statements": [{"query": "…", "parameters": {…}}],
//                                      "schema": {labels, relationshipTypes, propertyKeys}}  (schema optional)
//
// Prints JSON: [{"source": file-or-index, "diagnostics": [{severity, message, line, character}]}].
// Severity 1 = error, 2 = warning (as in the LSP).  Exits 1 when any statement has an error.
import { readFileSync } from 'node:fs';
import { lintCypherQuery } from '@neo4j-cypher/language-support';

function declaredParameters(query) {
  const names = {};
  for (const match of query.matchAll(/\$([A-Za-z_][A-Za-z0-9_]*)/g)) names[match[1]] = null;
  return names;
}

function lintOne(source, query, parameters, schema) {
  const dbSchema = { ...schema, parameters: parameters ?? declaredParameters(query) };
  const { diagnostics } = lintCypherQuery(query, dbSchema);
  return {
    source,
    diagnostics: diagnostics.map((d) => ({
      severity: d.severity, message: d.message,
      line: d.range.start.line + 1, character: d.range.start.character + 1,
    })),
  };
}

let results;
const files = process.argv.slice(2);
if (files.length) {
  results = files.map((file) => lintOne(file, readFileSync(file, 'utf8'), null, {}));
} else {
  const request = JSON.parse(readFileSync(0, 'utf8'));
  results = request.statements.map((s, i) => lintOne(s.source ?? i, s.query, s.parameters, request.schema ?? {}));
}
process.stdout.write(JSON.stringify(results, null, 1) + '\n');
process.exit(results.some((r) => r.diagnostics.some((d) => d.severity === 1)) ? 1 : 0);
