#!/usr/bin/env node
// Validates rendered Kubernetes manifests (a JSON array of objects, argv[2]) two ways:
//  1. kubernetes-models: each object against the Kubernetes OpenAPI schema (types, required
//     fields, formats);
//  2. kubernetes-types + `tsc --strict`: each object as a typed TypeScript literal, so a
//     misspelled or misplaced field is an excess-property error.
// Prints one line per problem and exits 1 if any. argv[3]: a scratch folder for the .ts file.
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const npm = path.resolve(__dirname, '../../tools/npm/node_modules');
const objects = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const scratch = process.argv[3];
const problems = [];
const where = (o) => `${o.kind}/${o.metadata && o.metadata.name}`;

// 1. Schema validation.
for (const object of objects) {
  let module;
  try {
    module = require(path.join(npm, 'kubernetes-models', object.apiVersion));
  } catch (e) {
    problems.push(`${where(object)}: no kubernetes-models module for apiVersion ${object.apiVersion}`);
    continue;
  }
  const Model = module[object.kind];
  if (!Model) {
    problems.push(`${where(object)}: kind ${object.kind} unknown in ${object.apiVersion}`);
    continue;
  }
  try {
    new Model(object).validate();
  } catch (e) {
    problems.push(`${where(object)}: schema: ${e.message.split('\n').slice(0, 5).join(' | ')}`);
  }
}

// 2. Typed literals checked by tsc --strict.
function typesModule(apiVersion) {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['core', apiVersion];
  return `kubernetes-types/${group.replace(/\.k8s\.io$/, '')}/${version}`;
}
const imports = new Map();
const lines = [];
objects.forEach((object, i) => {
  const module = typesModule(object.apiVersion);
  const alias = `${object.kind}_${module.replace(/[^a-zA-Z0-9]/g, '_')}`;
  imports.set(alias, `import type { ${object.kind} as ${alias} } from '${module}';`);
  lines.push(`// ${where(object)}\nexport const object${i}: ${alias} = ${JSON.stringify(object, null, 2)};`);
});
fs.mkdirSync(scratch, { recursive: true });
const tsFile = path.join(scratch, 'manifests.ts');
fs.writeFileSync(tsFile, [...imports.values(), ...lines].join('\n') + '\n');
try {
  execFileSync(process.execPath, [path.join(npm, 'typescript', 'bin', 'tsc'), '--strict', '--noEmit',
    '--skipLibCheck', '--moduleResolution', 'node10', '--module', 'commonjs', '--target', 'es2020',
    '--baseUrl', npm, tsFile], { encoding: 'utf8' });
} catch (e) {
  problems.push(`tsc --strict (kubernetes-types):\n${(e.stdout || '') + (e.stderr || '')}`);
}

for (const p of problems) console.log(p);
console.log(`${objects.length} objects, ${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
