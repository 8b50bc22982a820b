import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Worker } from 'node:worker_threads'

import { DeploymentEvent } from '../index.js'
import { catchCased, fieldMessage, fieldNames } from './support.mjs'

const SHA1 = '0123456789abcdef0123456789abcdef01234567'
const SHA256 = 'a'.repeat(64)
const invalid = (init) => catchCased(() => new DeploymentEvent(init), 'validation')
const ok = (extra) => new DeploymentEvent({ deployment_request: 'Deploy v1.4.2', ...extra })

describe('new DeploymentEvent(): each rule', () => {
  test('deployment_request is required, non-blank, at most 1000 characters, no control characters', () => {
    assert.equal(fieldMessage(invalid({}), 'deployment_request'), 'is required')
    assert.equal(fieldMessage(invalid({ deployment_request: '  \t ' }), 'deployment_request'), 'must not be empty')
    assert.equal(ok({ deployment_request: 'é'.repeat(1000) }).deploymentRequest, 'é'.repeat(1000))
    assert.match(
      fieldMessage(invalid({ deployment_request: 'é'.repeat(1001) }), 'deployment_request'),
      /1001 characters long; at most 1000/,
    )
    assert.match(fieldMessage(invalid({ deployment_request: 'bell\u0007' }), 'deployment_request'), /U\+0007/)
    assert.match(fieldMessage(invalid({ deployment_request: 'nul\u0000' }), 'deployment_request'), /U\+0000/)
    assert.equal(ok({ deployment_request: 'tab\tand\nnewline' }).deploymentRequest, 'tab\tand\nnewline')
  })

  test('repository_full_name is owner/name, nested GitLab groups allowed', () => {
    assert.equal(ok({ repository_full_name: 'acme/shop' }).repositoryFullName, 'acme/shop')
    assert.equal(ok({ repository_full_name: 'group/sub/project' }).repositoryFullName, 'group/sub/project')
    for (const bad of ['shop', 'acme/', '/shop', 'acme/../shop', 'acme/sh op', 'acme/shop!']) {
      assert.match(fieldMessage(invalid({ deployment_request: 'x', repository_full_name: bad }), 'repository_full_name'), /./, bad)
    }
  })

  test('status is one of five names and defaults to success', () => {
    assert.equal(ok().status, 'success')
    for (const s of ['pending', 'running', 'success', 'failure', 'cancelled']) assert.equal(ok({ status: s }).status, s)
    assert.match(
      fieldMessage(invalid({ deployment_request: 'x', status: 'done' }), 'status'),
      /"done" is not one of pending, running, success, failure, cancelled/,
    )
    assert.match(fieldMessage(invalid({ deployment_request: 'x', status: 'SUCCESS' }), 'status'), /not one of/)
  })

  test('external_url is an absolute http(s) URL', () => {
    assert.equal(ok({ external_url: 'https://ci.example.com/runs/7' }).externalUrl, 'https://ci.example.com/runs/7')
    for (const bad of ['ftp://ci.example.com/x', '/runs/7', 'not a url', 'mailto:ops@example.com']) {
      assert.match(fieldMessage(invalid({ deployment_request: 'x', external_url: bad }), 'external_url'), /./, bad)
    }
  })

  test('commit_sha is 7 to 64 hexadecimal characters', () => {
    for (const sha of ['abcdef1', SHA1, SHA256, 'ABCDEF0']) assert.equal(ok({ commit_sha: sha }).commitSha, sha)
    for (const bad of ['abcdef', 'a'.repeat(65), 'xyz1234', 'abc def1']) {
      assert.match(fieldMessage(invalid({ deployment_request: 'x', commit_sha: bad }), 'commit_sha'), /7 to 64 hexadecimal/, bad)
    }
  })

  test('commit_message is free text: lines allowed, control characters and 65536+ characters not', () => {
    assert.equal(ok({ commit_message: 'Fix\n\nBody\r\n' }).commitMessage, 'Fix\n\nBody\r\n')
    assert.match(fieldMessage(invalid({ deployment_request: 'x', commit_message: 'esc\u001b[31m' }), 'commit_message'), /U\+001B/)
    assert.match(
      fieldMessage(invalid({ deployment_request: 'x', commit_message: 'm'.repeat(65_537) }), 'commit_message'),
      /65537 characters long; at most 65536/,
    )
  })

  test('ref is a git ref name', () => {
    for (const r of ['refs/heads/main', 'main', 'v1.4.2', 'feature/x']) assert.equal(ok({ ref: r }).ref, r)
    for (const bad of ['a..b', 'main.lock', 'feat~1', 'a b', 'refs/heads/', 'x@{1}']) {
      assert.match(fieldMessage(invalid({ deployment_request: 'x', ref: bad }), 'ref'), /./, bad)
    }
  })

  test('event_metadata must be a JSON object; environment and correlation_id strings; at most 64 KiB', () => {
    const meta = { environment: 'production', version: '1.4.2', correlation_id: 'c-1', replicas: 3, canary: { weight: 10 } }
    const event = ok({ event_metadata: meta })
    assert.deepEqual(event.eventMetadata, meta)
    assert.equal(event.environment, 'production')
    assert.equal(event.correlationId, 'c-1')
    for (const [bad, kind] of [[[1, 2], 'an array'], ['prod', 'a string'], [null, 'null'], [7, 'a number']]) {
      assert.equal(
        fieldMessage(invalid({ deployment_request: 'x', event_metadata: bad }), 'event_metadata'),
        `must be a JSON object, got ${kind}`,
      )
    }
    const e = invalid({ deployment_request: 'x', event_metadata: { environment: 5, correlation_id: false } })
    assert.deepEqual(e.fields, [
      { field: 'event_metadata.environment', message: 'must be a string, got a number' },
      { field: 'event_metadata.correlation_id', message: 'must be a string, got a boolean' },
    ])
    assert.match(
      fieldMessage(invalid({ deployment_request: 'x', event_metadata: { blob: 'b'.repeat(70_000) } }), 'event_metadata'),
      /at most 65536 are allowed/,
    )
  })

  test('wrong types are named with the type received', () => {
    const e = invalid({ deployment_request: 42, commit_sha: ['abcdef1'], ref: true })
    assert.deepEqual(e.fields, [
      { field: 'deployment_request', message: 'must be a string, got a number' },
      { field: 'commit_sha', message: 'must be a string, got an array' },
      { field: 'ref', message: 'must be a string, got a boolean' },
    ])
  })

  test('unknown keys are rejected by name, with a hint for a typo', () => {
    const e = invalid({ deployment_request: 'x', comit_sha: 'abcdef1', colour: 'blue' })
    assert.deepEqual(fieldNames(e), ['colour', 'comit_sha'])
    assert.match(fieldMessage(e, 'comit_sha'), /unknown field; did you mean `commit_sha`\?/)
    assert.match(fieldMessage(e, 'colour'), /^unknown field \(known fields: deployment_request, /)
    // camelCase names are not the wire names: rejected, not silently dropped.
    assert.deepEqual(fieldNames(invalid({ deployment_request: 'x', commitSha: 'abcdef1' })), ['commitSha'])
  })

  test('several bad fields are reported at once, in one error', () => {
    const e = invalid({
      deployment_request: ' ',
      repository_full_name: 'no-slash',
      status: 'done',
      external_url: 'ftp://x',
      commit_sha: 'xyz',
      ref: 'a..b',
      event_metadata: [],
      extra: 1,
    })
    assert.deepEqual(fieldNames(e), [
      'extra',
      'status',
      'event_metadata',
      'deployment_request',
      'repository_full_name',
      'external_url',
      'commit_sha',
      'ref',
    ])
    assert.equal(e.fields.length, 8)
    assert.match(e.message, /^invalid deployment event \(8 problems\): extra: unknown field/)
    for (const f of e.fields) assert.ok(e.message.includes(`${f.field}: ${f.message}`), f.field)
    assert.equal(e.status, undefined)
  })

  test('undefined properties count as absent, as in JSON.stringify', () => {
    const event = ok({ commit_sha: undefined, ref: undefined })
    assert.equal(event.commitSha, null)
    assert.equal(event.toJson(), '{"deployment_request":"Deploy v1.4.2","status":"success"}')
  })

  test('a value JSON cannot hold is refused naming its path, not crashed on', () => {
    const e = catchCased(() => new DeploymentEvent({ deployment_request: 'x', event_metadata: { hook() {} } }), 'validation')
    assert.equal(fieldMessage(e, 'event_metadata.hook'), 'is a function, which JSON cannot hold')
    assert.equal(fieldMessage(invalid(undefined), 'body'), 'must be a JSON object, got null')
    assert.equal(fieldMessage(invalid('Deploy'), 'body'), 'must be a JSON object, got a string')
  })
})

describe('JSON', () => {
  const full = {
    deployment_request: 'Deploy v1.4.2',
    repository_full_name: 'acme/shop',
    status: 'running',
    external_url: 'https://ci.example.com/runs/7',
    commit_sha: SHA1,
    commit_message: 'Fix checkout "rounding"\n\nÜnïcödé ✓',
    ref: 'refs/heads/main',
    event_metadata: { environment: 'production', correlation_id: 'c-1', version: '1.4.2' },
  }
  const fullJson =
    '{"deployment_request":"Deploy v1.4.2","repository_full_name":"acme/shop","status":"running",' +
    `"external_url":"https://ci.example.com/runs/7","commit_sha":"${SHA1}",` +
    '"commit_message":"Fix checkout \\"rounding\\"\\n\\nÜnïcödé ✓","ref":"refs/heads/main",' +
    '"event_metadata":{"correlation_id":"c-1","environment":"production","version":"1.4.2"}}'

  test('toJson() is the exact wire JSON; JSON.stringify(event), toJSON() and toObject() agree', () => {
    const event = new DeploymentEvent(full)
    assert.equal(event.toJson(), fullJson)
    assert.equal(JSON.stringify(event), fullJson)
    assert.deepEqual(event.toJSON(), full)
    assert.deepEqual(event.toObject(), full)
    assert.deepEqual(Object.keys(event.toObject()), Object.keys(full))
  })

  test('absent optional fields are omitted, never null; status defaults to success', () => {
    const event = new DeploymentEvent({ deployment_request: 'Deploy' })
    assert.equal(event.toJson(), '{"deployment_request":"Deploy","status":"success"}')
    assert.deepEqual(event.toObject(), { deployment_request: 'Deploy', status: 'success' })
    for (const getter of ['repositoryFullName', 'externalUrl', 'commitSha', 'commitMessage', 'ref', 'eventMetadata', 'environment', 'correlationId']) {
      assert.equal(event[getter], null, getter)
    }
  })

  test('fromJson round-trips a string, a Buffer and a Uint8Array exactly', () => {
    assert.equal(DeploymentEvent.fromJson(fullJson).toJson(), fullJson)
    assert.equal(DeploymentEvent.fromJson(Buffer.from(fullJson)).toJson(), fullJson)
    assert.equal(DeploymentEvent.fromJson(new TextEncoder().encode(fullJson)).toJson(), fullJson)
    const minimal = '{"deployment_request":"Deploy","status":"success"}'
    assert.equal(DeploymentEvent.fromJson(minimal).toJson(), minimal)
  })

  test('fromJson validates like the constructor', () => {
    const e = catchCased(() => DeploymentEvent.fromJson('{"deployment_request":"","commit_sha":"zz","refs":"main"}'), 'validation')
    assert.deepEqual(fieldNames(e), ['refs', 'deployment_request', 'commit_sha'])
    assert.match(fieldMessage(e, 'refs'), /did you mean `ref`\?/)
  })

  test('fromJson names malformed, empty and non-object bodies', () => {
    assert.match(fieldMessage(catchCased(() => DeploymentEvent.fromJson('{"deployment_request": '), 'validation'), 'body'), /is not valid JSON/)
    assert.equal(fieldMessage(catchCased(() => DeploymentEvent.fromJson(''), 'validation'), 'body'), 'is empty; expected a JSON object')
    assert.equal(fieldMessage(catchCased(() => DeploymentEvent.fromJson(Buffer.alloc(0)), 'validation'), 'body'), 'is empty; expected a JSON object')
    assert.equal(fieldMessage(catchCased(() => DeploymentEvent.fromJson('[1]'), 'validation'), 'body'), 'must be a JSON object, got an array')
  })

  test('fromJson rejects bytes that are not UTF-8 and names the offset', () => {
    const prefix = Buffer.from('{"deployment_request":"')
    const bytes = Buffer.concat([prefix, Buffer.from([0xc3, 0x28]), Buffer.from('"}')])
    const e = catchCased(() => DeploymentEvent.fromJson(bytes), 'validation')
    assert.deepEqual(e.fields, [{ field: 'body', message: `is not valid UTF-8 (invalid byte at offset ${prefix.length})` }])
  })

  test('control characters escaped in JSON text are still refused', () => {
    const e = catchCased(() => DeploymentEvent.fromJson('{"deployment_request":"a\\u0000b","ref":"ma\\u0001in"}'), 'validation')
    assert.deepEqual(fieldNames(e), ['deployment_request', 'ref'])
  })
})

describe('DeploymentEvent.fromEnv', () => {
  const github = {
    GITHUB_ACTIONS: 'true',
    GITHUB_SHA: SHA1,
    GITHUB_REPOSITORY: 'acme/shop',
    GITHUB_REF: 'refs/heads/main',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_RUN_ID: '4242',
    GITHUB_RUN_ATTEMPT: '2',
    CASED_ENVIRONMENT: 'production',
  }
  const githubEvent = {
    deployment_request: 'Deploy acme/shop@0123456',
    repository_full_name: 'acme/shop',
    status: 'success',
    external_url: 'https://github.com/acme/shop/actions/runs/4242',
    commit_sha: SHA1,
    ref: 'refs/heads/main',
    event_metadata: { correlation_id: 'github:acme/shop:4242:2', environment: 'production' },
  }

  test('reads a GitHub Actions environment', () => {
    assert.deepEqual(DeploymentEvent.fromEnv(github).toObject(), githubEvent)
  })

  test('reads a GitLab CI environment (nested groups, commit message, pipeline URL)', () => {
    const event = DeploymentEvent.fromEnv({
      GITLAB_CI: 'true',
      CI_COMMIT_SHA: SHA256,
      CI_PROJECT_PATH: 'group/sub/project',
      CI_COMMIT_REF_NAME: 'main',
      CI_PIPELINE_URL: 'https://gitlab.com/group/sub/project/-/pipelines/77',
      CI_COMMIT_MESSAGE: 'Fix the thing\n\nLonger text\n',
      CI_ENVIRONMENT_NAME: 'staging',
      CI_PIPELINE_ID: '77',
      CASED_DEPLOYMENT_REQUEST: 'Release 2.0',
    })
    assert.deepEqual(event.toObject(), {
      deployment_request: 'Release 2.0',
      repository_full_name: 'group/sub/project',
      status: 'success',
      external_url: 'https://gitlab.com/group/sub/project/-/pipelines/77',
      commit_sha: SHA256,
      commit_message: 'Fix the thing\n\nLonger text\n',
      ref: 'main',
      event_metadata: { correlation_id: 'gitlab:group/sub/project:77', environment: 'staging' },
    })
    assert.equal(event.environment, 'staging')
  })

  test('no CI detected is a validation error on `environment`', () => {
    const e = catchCased(() => DeploymentEvent.fromEnv({ PATH: '/usr/bin', CI: 'true' }), 'validation')
    assert.match(fieldMessage(e, 'environment'), /no supported CI detected/)
  })

  test('bad CI values are reported by field', () => {
    const e = catchCased(() => DeploymentEvent.fromEnv({ ...github, GITHUB_SHA: 'not-a-sha', GITHUB_REF: 'a..b' }), 'validation')
    assert.deepEqual(fieldNames(e), ['commit_sha', 'ref'])
  })

  test('without an argument it reads process.env, including changes made from JavaScript', (t) => {
    const saved = { ...process.env }
    t.after(() => {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k]
      Object.assign(process.env, saved)
    })
    for (const k of Object.keys(process.env)) if (/^(GITHUB_|GITLAB_|CI_|CASED_)/.test(k)) delete process.env[k]
    Object.assign(process.env, github)
    assert.deepEqual(DeploymentEvent.fromEnv().toObject(), githubEvent)
    delete process.env.GITHUB_ACTIONS
    assert.match(fieldMessage(catchCased(() => DeploymentEvent.fromEnv(), 'validation'), 'environment'), /no supported CI/)
  })

  test("in a worker thread it reads the worker's own process.env", async () => {
    const source = `
      const { parentPort } = require('node:worker_threads')
      const { DeploymentEvent } = require(${JSON.stringify(new URL('../index.js', import.meta.url).pathname)})
      parentPort.postMessage(DeploymentEvent.fromEnv().toObject())
    `
    const worker = new Worker(source, { eval: true, env: { ...github, CASED_ENVIRONMENT: 'worker-env' } })
    const [message] = await new Promise((resolve, reject) => {
      worker.once('message', (m) => resolve([m]))
      worker.once('error', reject)
    })
    await worker.terminate()
    assert.deepEqual(message, { ...githubEvent, event_metadata: { ...githubEvent.event_metadata, environment: 'worker-env' } })
  })
})
