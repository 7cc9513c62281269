/**
 * Types for the async LevelDB persistence of aedes-persistence-level, which
 * ships none. Only what broker/embedded.ts uses; Aedes calls the rest.
 */
declare module 'aedes-persistence-level/asyncPersistence.js' {
  import type { ClassicLevel } from 'classic-level'

  export default class AsyncLevelPersistence {
    constructor(db: ClassicLevel<string, Buffer>)
    setup(broker: unknown): Promise<void>
    /** Closes the database. */
    destroy(): Promise<void>
  }
}
