import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { test } from 'node:test'

import ts from 'typescript'

const require = createRequire(import.meta.url)
const dtsPath = new URL('../index.d.ts', import.meta.url).pathname
const binding = require('../index.js')

/** The exported declarations of index.d.ts: value names, and members of each class. */
function declarations() {
  const source = ts.createSourceFile(dtsPath, readFileSync(dtsPath, 'utf8'), ts.ScriptTarget.Latest, true)
  const values = new Set()
  const interfaces = new Set()
  const classes = new Map()
  const exported = (node) => node.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)
  for (const node of source.statements) {
    if (!exported(node)) continue
    if (ts.isClassDeclaration(node)) {
      values.add(node.name.text)
      const members = { instance: new Set(), statics: new Set() }
      for (const m of node.members) {
        if (!m.name) continue
        const isStatic = m.modifiers?.some((x) => x.kind === ts.SyntaxKind.StaticKeyword)
        ;(isStatic ? members.statics : members.instance).add(m.name.text)
      }
      classes.set(node.name.text, members)
    } else if (ts.isFunctionDeclaration(node)) {
      values.add(node.name.text)
    } else if (ts.isVariableStatement(node)) {
      for (const d of node.declarationList.declarations) values.add(d.name.text)
    } else if (ts.isInterfaceDeclaration(node) || ts.isTypeAliasDeclaration(node)) {
      interfaces.add(node.name.text)
    } else {
      assert.fail(`unexpected export kind ${ts.SyntaxKind[node.kind]}`)
    }
  }
  return { values, interfaces, classes }
}

const sorted = (iterable) => [...iterable].sort()

test('index.d.ts declares every export of index.js, and nothing that is not there', () => {
  const { values } = declarations()
  assert.deepEqual(sorted(values), sorted(Object.keys(binding)))
  for (const name of ['Client', 'DeploymentEvent', 'enableLogging']) assert.ok(values.has(name), name)
})

test('every class member at run time is declared, and every declared member exists', () => {
  const { classes } = declarations()
  for (const [name, declared] of classes) {
    const cls = binding[name]
    const instance = Object.getOwnPropertyNames(cls.prototype).filter((k) => k !== 'constructor')
    const statics = Object.getOwnPropertyNames(cls).filter((k) => !['length', 'name', 'prototype', 'arguments', 'caller'].includes(k))
    assert.deepEqual(sorted(instance), sorted([...declared.instance].filter((k) => k !== 'constructor')), `${name} members`)
    assert.deepEqual(sorted(statics), sorted(declared.statics), `${name} statics`)
  }
})

test('the object and error shapes are declared', () => {
  const { interfaces } = declarations()
  for (const name of ['CasedErrorInfo', 'ClientOptions', 'DeploymentEventInit', 'DeploymentResponse', 'FieldError']) {
    assert.ok(interfaces.has(name), name)
  }
})

test('a strict TypeScript program using the API type-checks, and misuse is caught', () => {
  const usage = new URL('./types/usage.ts', import.meta.url).pathname
  const program = ts.createProgram([usage], {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2022.d.ts'],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  })
  const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file ? `${d.file.fileName}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}` : ''
    return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
  })
  assert.deepEqual(diagnostics, [])
})
