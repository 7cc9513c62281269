/** Types for pino-roll, which ships none. Only what src/log.ts uses. */
declare module 'pino-roll' {
  import type { DestinationStream } from 'pino'
  export default function roll(options: {
    file: string
    size?: string | number
    frequency?: string | number
    limit?: { count?: number; removeOtherLogFiles?: boolean }
    mkdir?: boolean
  }): Promise<DestinationStream & { flushSync(): void; end(): void }>
}
