/** The task store's conformance suite (task-store-suite.ts) on the default backend: SQLite, a file per place. */
import { after } from 'node:test'
import { join } from 'node:path'
import { SqliteStore } from '../../src/coordinator/sqlite-store.js'
import { tempDir } from '../helpers/hub.js'
import { taskStoreSuite } from './task-store-suite.js'

const dir = tempDir('trinity-store-conformance-')
after(() => dir.remove())

taskStoreSuite('sqlite', {
  open: (place) => Promise.resolve(new SqliteStore({ file: join(dir.path, place, 'trinity.db'), sync: 'normal' })),
})
