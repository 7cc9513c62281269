/**
 * The node flags the hub process runs with: `trinity start` launches the hub
 * (and the git bridge) with them, and the tests' and the bench's hubs too, so
 * that what is measured is what users run.
 * - --max-semi-space-size=2: V8's default 16 MB young generation costs the
 *   idle hub ~25 MB of RSS and bought no throughput in `npm run bench`.
 * - --expose-gc: lets the hub collect once a burst is over instead of
 *   holding up to four times its live heap until V8's memory reducer comes
 *   round (src/heap-settle.ts; issue #12).
 * `trinity hub` run directly gets the same flags from the bin's shebang (src/cli/main.ts).
 */
export const HUB_NODE_ARGS: readonly string[] = ['--max-semi-space-size=2', '--expose-gc']
