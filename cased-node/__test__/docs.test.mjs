// The README's JavaScript examples marked `js runnable` run as written, as ES modules, against a
// real deployments API on loopback (CASED_BASE_URL and CASED_API_KEY point them at it). The
// package name `cased` is resolved to this build.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'

import { API_KEY, INDEX, child, reply, startApi } from './support.mjs'

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
const BLOCKS = [...README.matchAll(/^```js runnable\n([\s\S]*?)^```$/gm)].map((m) => m[1])

test('the README has runnable JavaScript examples', () => {
  assert.ok(BLOCKS.length > 0, 'no ```js runnable block in README.md')
})

for (const [i, code] of BLOCKS.entries()) {
  test(`README example ${i} runs as an ES module`, async (t) => {
    const api = await startApi((_, res) => reply(res, 201, { id: 1 }))
    t.after(() => api.close())
    const source = code.replaceAll("from 'cased'", `from ${JSON.stringify(INDEX)}`)
    const { exited } = child(source, { CASED_BASE_URL: api.url, CASED_API_KEY: API_KEY })
    const { code: status, stdout, stderr } = await exited
    assert.equal(status, 0, stderr)
    assert.equal(api.requests.length, 1, 'the example posts one event')
    assert.equal(api.requests[0].url, '/api/v1/deployments/')
    assert.match(stdout, /^201 /, stdout)
  })
}
