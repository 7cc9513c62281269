// Type-aware lint (typescript-eslint's recommended-type-checked set) over every TypeScript
// file the two builds compile: tsconfig.json (src, broker, bridges, web/server.ts, test,
// bench) and web/tsconfig.json (web/src, DOM lib). The project service picks each file's
// nearest tsconfig, so the dashboard's pages are checked against the DOM, the rest against
// Node. These are the checks tsc does not make: promises nobody awaits or catches, promises
// where a callback's result is ignored, `any` leaking in, assertions that assert nothing.
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'test-artifacts/**', '**/*.js', '**/*.mjs'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // node:test's test(), describe() and hooks return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] }],
      // `_name` marks a binding kept on purpose (rest-destructuring to drop a field, an unused parameter a signature needs).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      // A `let` read by a callback before its one assignment (a server's handler made before the agent it reports on) stays `let`: as `const` an early call would throw in the TDZ.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // Off: `async` without `await` is how this code meets a promise-returning contract (Fastify's async handlers return the reply, Aedes persistence overrides, agent handlers, helpers their callers await) and turns a throw into a rejection; dropping it would change that.
      '@typescript-eslint/require-await': 'off',
    },
  },
)
