/**
 * The hub's own bus identity. With broker auth on, the hub and the processes
 * the supervisor runs for it (the git bridge) log in as this admin user with
 * a secret made per start; the secret travels only in the child's environment
 * (ENV.hubSecret, config/env.ts).
 */
export const HUB_USERNAME = 'trinity-hub'
/** The read-only bus user whose login GET /auth/bus hands the dashboards (its password derives from the hub's secret). */
export const DASHBOARD_USERNAME = 'trinity-dashboard'
