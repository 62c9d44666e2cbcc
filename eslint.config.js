import nx from '@nx/eslint-plugin';

// Only platform libraries (libs/auth, libs/messaging, libs/database) talk to Azure and the database: everything
// else gets its clients, credentials and types from them, so there is exactly one place where identity and Azure meet.
const azureSdks = ['@azure/*', '@azure-rest/*', 'openai', 'pg'];

/**
 * Module boundaries on two axes.
 * type: app → platform | contracts; platform → platform | contracts; contracts → contracts; tool → platform | contracts.
 * bench (the benchmarks under bench/) → tool | platform | contracts, and the applications it drives (allow list below).
 * scope: each service sees itself and shared; tooling sees shared; shared sees only shared.
 */
const depConstraints = [
  { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:platform', 'type:contracts'], bannedExternalImports: azureSdks },
  { sourceTag: 'type:platform', onlyDependOnLibsWithTags: ['type:platform', 'type:contracts'] },
  {
    sourceTag: 'type:contracts',
    onlyDependOnLibsWithTags: ['type:contracts'],
    bannedExternalImports: [...azureSdks, '@nestjs/*', 'rhea'],
  },
  { sourceTag: 'type:tool', onlyDependOnLibsWithTags: ['type:platform', 'type:contracts'], bannedExternalImports: azureSdks },
  // End-to-end tests drive the running system through the launcher; they import no service code.
  { sourceTag: 'type:e2e', onlyDependOnLibsWithTags: ['type:tool', 'type:contracts'] },
  // Benchmarks drive the built system like e2e tests, and also measure platform libraries in-process.
  { sourceTag: 'type:bench', onlyDependOnLibsWithTags: ['type:tool', 'type:platform', 'type:contracts'] },
  // Test support (@keyless/testing) depends on no workspace project; only test files import it (below).
  { sourceTag: 'type:testing', onlyDependOnLibsWithTags: [] },
  { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'] },
  { sourceTag: 'scope:gateway', onlyDependOnLibsWithTags: ['scope:gateway', 'scope:shared'] },
  { sourceTag: 'scope:recommendation', onlyDependOnLibsWithTags: ['scope:recommendation', 'scope:shared'] },
  { sourceTag: 'scope:vision', onlyDependOnLibsWithTags: ['scope:vision', 'scope:shared'] },
  { sourceTag: 'scope:tooling', onlyDependOnLibsWithTags: ['scope:tooling', 'scope:shared'] },
  { sourceTag: 'scope:e2e', onlyDependOnLibsWithTags: ['scope:tooling', 'scope:shared'] },
];

const boundaries = (constraints, allow = []) => [
  'error',
  { enforceBuildableLibDependency: false, allow, depConstraints: constraints },
];

export default [
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  { ignores: ['**/dist', '**/node_modules', '**/coverage', '**/.local-azure', 'tmp'] },
  {
    files: ['**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': boundaries(depConstraints),
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
      // Non-null assertions mark invariants the type system cannot see (a regex group that matched, a
      // key just set); they are allowed, and reviewed like any other claim.
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // The libraries' second entries are not for services: `@keyless/auth/diagnostics` (access diagnostics, option
    // internals, metric names) serves the doctor, infra checks, test support and benches; `@keyless/messaging/internals`
    // the transport's own tests and tools. An app's or a library's sources use the main entries.
    files: ['apps/*/src/**/*.ts', 'libs/*/src/**/*.ts', 'tools/launcher/src/**/*.ts'],
    ignores: ['libs/*/src/testing/**', '**/*.spec.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: '@keyless/auth/diagnostics', message: 'Services use @keyless/auth; the diagnostics entry is for the doctor, infra and tests.' },
            { name: '@keyless/messaging/internals', message: 'Services use @keyless/messaging; the internals entry is for its tests and tools.' },
          ],
        },
      ],
    },
  },
  {
    // Benchmarks (Nx project `bench`; bench/chaos is its own project) print their numbers, and drive the built
    // system from outside like tests do: the local Azure, the launcher and the recommendation's ranking in-process.
    files: ['bench/*.ts', 'bench/support/**/*.ts'],
    rules: {
      'no-console': 'off',
      '@nx/enforce-module-boundaries': boundaries(depConstraints, [
        '@keyless/local-azure',
        '@keyless/local-azure/testing',
        '@keyless/launcher',
        '@keyless/recommendation/dist/**',
      ]),
    },
  },
  {
    // Tests drive the real Azure SDKs as clients against the local Azure: the SDK ban does not apply to them,
    // any project's tests may start the local Azure (an application, tagged type:tool) in-process, and they share
    // the test support of @keyless/testing (type:testing, which no other file may import).
    files: ['**/*.spec.ts', '**/test/**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': boundaries(
        depConstraints.map(({ bannedExternalImports: _banned, ...rest }) =>
          rest.sourceTag.startsWith('type:') ? { ...rest, onlyDependOnLibsWithTags: [...rest.onlyDependOnLibsWithTags, 'type:testing'] } : rest,
        ),
        ['@keyless/local-azure', '@keyless/local-azure/testing'],
      ),
    },
  },
];
